-- Sets the time after which a role's password stops working.
ALTER ROLE {name} VALID UNTIL {until}
