// expect: error 5:*
// today: hang FIXME formatting a thrown value runs its getter without a time limit (issue 10 item 3)
const bad = {};
Object.defineProperty(bad, 'message', { get: function () { for (;;) {} } });
flux('g', () => { throw bad; });
