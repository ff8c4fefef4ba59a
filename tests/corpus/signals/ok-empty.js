// expect: ok 0
