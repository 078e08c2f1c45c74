"""smartscope.acquire"""
