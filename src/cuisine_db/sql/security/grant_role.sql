-- Makes a role a member of another (a predefined role such as pg_monitor).
GRANT {group} TO {name}
