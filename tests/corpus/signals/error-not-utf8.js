// expect: error 3:4 not UTF-8
flux("a", () => ({ update: () => 0 }));
// ÿş bad bytes
