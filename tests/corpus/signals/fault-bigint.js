// expect: fault big
flux('big', () => ({ update: () => 10n }));
