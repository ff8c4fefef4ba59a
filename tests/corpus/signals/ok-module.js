// expect: ok 1
import { flux } from './flux.js';
flux('m', () => ({ update: () => 0.1 }));
