def seconds_between(a, b):
    return (b - a).total_seconds()
