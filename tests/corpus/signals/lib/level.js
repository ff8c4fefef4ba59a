// A helper module of the corpus (not a case).
export const level = 0.125;
