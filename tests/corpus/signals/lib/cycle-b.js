// A helper module of the corpus (not a case).
import { a } from './cycle-a.js';
export const b = 0.2;
export function first() { return a; }
