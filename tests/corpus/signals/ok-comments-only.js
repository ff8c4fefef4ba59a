// expect: ok 0
/* nothing here */
// flux('x', () => ({ update: () => 1 }));
