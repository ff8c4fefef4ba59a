// expect: error 3:* null
// today: error 1:1 uncaught exception: null FIXME a thrown non-Error is reported at 1:1 (issue 10 item 9)
flux('t', () => { throw null; });
