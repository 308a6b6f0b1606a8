"""The public status page: the server's health, maintenance under way and to come, and
the incident notes a manager posts; health checks for load balancers; e-mail notices to
staff who subscribed."""
