// expect: ok 1
flux('g', () => {
  const o = { get amp() { return 0.1; } };
  return { update: () => o.amp };
});
