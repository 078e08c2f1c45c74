"""smartscope.sim"""
