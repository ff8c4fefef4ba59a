// expect: fault thrower
flux('thrower', () => ({ update: () => { throw new Error('in update'); } }));
