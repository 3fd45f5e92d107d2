-- migrate:up
-- expect: ok
-- rules: none
-- runtime: yes
-- why: ALTER TYPE ... ADD VALUE runs in a transaction from 12 on (the new value just cannot be used in it)
ALTER TYPE mood ADD VALUE 'calm';

-- migrate:down
