// expect: fault gu
// today: hang FIXME a thrown value's looping getter hangs the DSP thread (issue 10 item 3)
const bad = {};
Object.defineProperty(bad, 'message', { get: function () { for (;;) {} } });
flux('gu', () => ({ update: () => { throw bad; } }));
