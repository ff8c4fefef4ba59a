// expect: error 2:* SyntaxError
return 1;
