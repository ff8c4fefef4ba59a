// expect: error 3:9 SyntaxError
flux('a', () => ({ update: () => 0 }));
let b = ;
