"""Gateway adapters. ``cartpay.gateways.stripe.StripeGateway`` is the real one."""
