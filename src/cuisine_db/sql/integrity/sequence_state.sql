-- A sequence's last value and whether it was handed out (if not, nextval returns last_value itself).
SELECT last_value::numeric, is_called FROM {sequence}
