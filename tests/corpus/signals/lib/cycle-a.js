// A helper module of the corpus (not a case).
import { b } from './cycle-b.js';
export const a = 0.1;
export function both() { return a + b; }
