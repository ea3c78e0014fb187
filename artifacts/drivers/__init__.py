"""artifacts/drivers"""
