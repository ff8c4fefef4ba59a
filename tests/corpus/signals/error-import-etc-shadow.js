// expect: error 2:15 import '/etc/shadow' refused: /etc/shadow is outside the folder
import x from '/etc/shadow';
