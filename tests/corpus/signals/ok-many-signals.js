// expect: ok 300
for (let i = 0; i < 300; i++) flux('s' + i, () => ({ update: () => 0 }));
