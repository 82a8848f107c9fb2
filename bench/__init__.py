"""jacobench: measure how normalizing flows pay for the log-determinant of their Jacobian."""
