ROLLING = "rolling"
BLUE_GREEN = "blue-green"
STRATEGY_CHOICES = [(ROLLING, "rolling"), (BLUE_GREEN, "blue-green")]
