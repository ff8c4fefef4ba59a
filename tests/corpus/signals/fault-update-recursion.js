// expect: fault deep
function f(n) { return f(n + 1) + 1; }
flux('deep', () => ({ update: () => f(0) }));
