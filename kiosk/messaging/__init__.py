"""Messages to clients (e-mail, SMS, voice, portal): the one interface every sender uses
to record a message to send. The channels that deliver them build on these rows."""
