// expect: fault gu
const bad = {};
Object.defineProperty(bad, 'message', { get: function () { for (;;) {} } });
flux('gu', () => ({ update: () => { throw bad; } }));
