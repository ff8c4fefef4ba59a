// expect: fault nan
flux('nan', () => ({ update: () => NaN }));
