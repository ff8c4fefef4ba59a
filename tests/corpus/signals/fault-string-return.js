// expect: fault str
flux('str', () => ({ update: () => 'loud' }));
