// expect: error 1:1 not UTF-8
flux("a", () => ({ update: () => 0 }));
// ÿş bad bytes
