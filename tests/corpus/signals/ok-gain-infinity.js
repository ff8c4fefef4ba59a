// expect: ok 0
gain(Infinity);
