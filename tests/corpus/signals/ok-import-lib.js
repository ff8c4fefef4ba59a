// expect: ok 1
import { flux } from './flux.js';
import { level } from './lib/level.js';
flux('lib', () => ({ update: () => level }));
