// expect: error 3:* SyntaxError
// today: error 1:1 SyntaxError FIXME regex syntax errors are reported at 1:1 (issue 10 item 9)
const r = /(unclosed/;
flux('a', () => ({ update: () => 0 }));
