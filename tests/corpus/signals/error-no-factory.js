// expect: error 2:*
flux('nofactory');
