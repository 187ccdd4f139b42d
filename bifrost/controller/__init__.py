"""Watch, queue, observe, trigger; leader election; scheduler; composition root."""
