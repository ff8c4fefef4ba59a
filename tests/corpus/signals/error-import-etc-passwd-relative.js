// expect: error 2:15 refused:
import x from '../../../../../../../../../../etc/passwd';
