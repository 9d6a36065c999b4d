"""The jobs service: owns the database, the job state machine and the outbox."""
