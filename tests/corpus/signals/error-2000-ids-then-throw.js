// expect: error 3:11 Error: late
for (let i = 0; i < 2000; i++) flux('many' + i, () => ({ update: () => 0 }));
throw new Error('late');
