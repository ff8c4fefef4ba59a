// expect: ok 1
import { flux } from './flux.js';
import { both } from './lib/cycle-a.js';
flux('cyc', () => ({ update: () => both() }));
