"""Generate example JSON for Heroku resources from the platform API hyper-schema."""
import json, sys
s=json.load(open('/work/shared/heroku-platform-api-schema.json'))
def res(ref):
    t=s
    for p in ref.lstrip('#/').split('/'): t=t[p]
    return t
def ex(node):
    if '$ref' in node: return ex(res(node['$ref']))
    if 'example' in node: return node['example']
    if 'anyOf' in node: return ex(node['anyOf'][0])
    if 'oneOf' in node: return ex(node['oneOf'][0])
    t=node.get('type',[])
    if isinstance(t,str): t=[t]
    if 'object' in t and 'properties' in node:
        return {k:ex(v) for k,v in node['properties'].items()}
    if 'array' in t and 'items' in node:
        return [ex(node['items'])]
    if 'null' in t: return None
    raise Exception('no example for %s'%json.dumps(node)[:300])
import os
out=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures/')
for name in ['app','release','formation','dyno','log-session','account','build','slug','log-drain','domain']:
    obj={k:ex(v) for k,v in s['definitions'][name]['properties'].items()}
    json.dump(obj, open(out+name+'.json','w'), indent=2, sort_keys=True); open(out+name+'.json','a').write('\n')
def link(name,title):
    for l in s['definitions'][name]['links']:
        if l['title']==title: return l
for fname,(name,title) in {'app-create':('app','Create'),'release-create':('release','Create'),'release-rollback':('release','Rollback'),'formation-batch-update':('formation','Batch Update'),'formation-update':('formation','Update'),'log-session-create':('log-session','Create'),'build-create':('build','Create'),'config-vars-update':('config-var','Update')}.items():
    sc=link(name,title)['schema']
    obj=ex(sc)
    json.dump(obj, open(out+fname+'.json','w'), indent=2, sort_keys=True); open(out+fname+'.json','a').write('\n')
