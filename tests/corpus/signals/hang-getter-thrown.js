// expect: error 4:*
const bad = {};
Object.defineProperty(bad, 'message', { get: function () { for (;;) {} } });
flux('g', () => { throw bad; });
