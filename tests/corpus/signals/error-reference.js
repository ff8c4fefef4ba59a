// expect: error 2:* ReferenceError
setTimeout(() => {}, 10);
