-- amcheck's corruption report for one table (heap, and the TOAST values it points to): block, offset, attribute, message.
SELECT blkno, offnum, attnum, msg FROM {schema}.verify_heapam(relation => %(oid)s::oid::regclass, check_toast => true)
