// expect: error 2:19 import './lib/missing.js' refused: cannot find
import { x } from './lib/missing.js';
flux('m', () => ({ update: () => x }));
