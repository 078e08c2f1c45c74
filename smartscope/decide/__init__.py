"""smartscope.decide"""
