// expect: error 3:* 42
// today: error 1:1 uncaught exception: 42 FIXME a thrown non-Error is reported at 1:1 (issue 10 item 9)
flux('t', () => { throw 42; });
