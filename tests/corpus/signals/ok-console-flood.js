// expect: ok 1
for (let i = 0; i < 5000; i++) console.log('line ' + i);
flux('c', () => ({ update: () => 0 }));
