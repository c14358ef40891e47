# Send a task to the worker started from celery_app.py and wait for its result.
from celery_app import add

result = add.delay(2, 3)
print('2 + 3 =', result.get(timeout=30))  # 2 + 3 = 5
