/* `halo trace html`: one self-contained HTML file (no network, no files
 * beside it) with a Gantt chart of the tasks by worker and of the data
 * transfers by link (wheel to zoom,
 * drag to pan, hover for a task), utilisation over time, and the summary
 * tables. The data is embedded as JSON; the drawing is a small script on
 * two canvases. */
#include "config.h"
#include "cli/trace_html.h"
#include "io/fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char page_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	"<title>halo trace</title>\n<style>\n"
	"body{font:13px system-ui,sans-serif;margin:16px;color:#222}\n"
	"h1{font-size:18px;margin:0 0 4px}h2{font-size:15px;margin:18px 0 6px}\n"
	"canvas{border:1px solid #ccc;display:block;cursor:crosshair}\n"
	"table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eee;"
	"text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}\n"
	"#tip{position:fixed;pointer-events:none;background:#fffbe6;border:1px solid #cca;"
	"padding:4px 6px;display:none;white-space:pre}\n.legend span{display:inline-block;"
	"margin-right:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}\n"
	"</style></head><body>\n<h1>halo trace</h1><p id=\"meta\"></p>\n"
	"<h2>Tasks by worker, data transfers by link</h2><p>Wheel: zoom; drag: pan; "
	"double-click: reset.</p>\n"
	"<div class=\"legend\" id=\"legend\"></div><canvas id=\"gantt\" width=\"1200\" "
	"height=\"300\"></canvas>\n<h2>Utilisation over time</h2><canvas id=\"util\" width=\"1200\" "
	"height=\"120\"></canvas>\n<h2>Codelets</h2><table id=\"codelets\"></table>\n"
	"<h2>Workers</h2><table id=\"workers\"></table>\n<h2>Links</h2><table id=\"links\"></table>\n"
	"<h2>Critical path</h2><p id=\"critical\"></p>\n<div id=\"tip\"></div>\n"
	"<script>\nconst D = ";

static const char page_script[] =
	";\n"
	"const C=['#4e79a7','#f28e2b','#e15759','#76b7b2','#59a14f','#edc948','#b07aa1','#ff9da7',"
	"'#9c755f','#bab0ac'];\n"
	"const color=i=>C[i%C.length];\n"
	"const ms=v=>(v/1000).toFixed(3),times=v=>v==null?'-':v.toFixed(2)+'x';\n"
	"const S=D.summary;\n"
	"const why=(S.error||'').replace(/^interrupted[;, ]*/,'');\n"
	"document.getElementById('meta').textContent=D.source+': '+D.tasks.length+' tasks, makespan '"
	"+ms(S.makespan_us)+' ms, scheduler '+S.scheduler+', '+D.workers.length+' workers'"
	"+(S.outcome=='ok'?'':'. The run '+(S.outcome=='interrupted'?'was interrupted':S.outcome)"
	"+(why?': '+why:'')"
	"+'; '+S.skipped_tasks"
	"+' tasks did no work after that (left out of the codelets table).');\n"
	"const lg=document.getElementById('legend');\n"
	"D.codelets.forEach((n,i)=>{const s=document.createElement('span'),b=document.createElement('i');"
	"b.style.background=color(i);s.append(b,n);lg.appendChild(s);});\n"
	"const g=document.getElementById('gantt'),gx=g.getContext('2d');\n"
	"const nrows=D.workers.length+D.links.length;\n"
	"const rowH=Math.max(14,Math.min(40,Math.floor(260/Math.max(1,nrows))));\n"
	"g.height=rowH*nrows+30;\n"
	"const left=170,W=g.width-left-10,end=Math.max(1,D.summary.makespan_us);\n"
	"let t0=0,t1=end;\n"
	"const row={},lrow={};D.workers.forEach((w,i)=>row[w.id]=i);"
	"D.links.forEach((l,j)=>lrow[l.id]=D.workers.length+j);\n"
	"function drawGantt(){gx.clearRect(0,0,g.width,g.height);gx.font='12px sans-serif';"
	"gx.fillStyle='#222';D.workers.forEach((w,i)=>{gx.fillText(w.name.slice(0,24),4,i*rowH+rowH*0.7);"
	"gx.fillStyle=i%2?'#fafafa':'#f2f2f2';gx.fillRect(left,i*rowH,W,rowH);gx.fillStyle='#222';});"
	"D.links.forEach((l,j)=>{const i=D.workers.length+j;gx.fillText(l.name.slice(0,28),4,i*rowH+rowH*0.7);"
	"gx.fillStyle='#eef3f8';gx.fillRect(left,i*rowH,W,rowH);gx.fillStyle='#222';});"
	"const k0=W/(t1-t0);for(const t of D.transfers){const a=t[1],b=t[1]+t[2];if(b<t0||a>t1)continue;"
	"gx.fillStyle='rgba(60,60,60,0.45)';gx.fillRect(left+(a-t0)*k0,lrow[t[0]]*rowH+3,"
	"Math.max(1,(b-a)*k0),rowH-6);}"
	"const k=W/(t1-t0);for(const t of D.tasks){const a=t[1],b=t[1]+t[2];if(b<t0||a>t1)continue;"
	"const x=left+(a-t0)*k,w=Math.max(1,(b-a)*k);gx.fillStyle=color(t[3]);"
	"gx.fillRect(x,row[t[0]]*rowH+2,w,rowH-4);}"
	"gx.fillStyle='#222';for(let i=0;i<=5;i++){const v=t0+(t1-t0)*i/5;"
	"gx.fillText(ms(v)+' ms',left+W*i/5-(i==5?60:0),g.height-8);}}\n"
	"const u=document.getElementById('util'),ux=u.getContext('2d');\n"
	"function drawUtil(){const n=200,b=new Float64Array(n),dt=end/n;for(const t of D.tasks){"
	"let a=t[1],e=t[1]+t[2];for(let i=Math.floor(a/dt);i<n&&i*dt<e;i++){const lo=Math.max(a,i*dt),"
	"hi=Math.min(e,(i+1)*dt);if(hi>lo)b[i]+=hi-lo;}}ux.clearRect(0,0,u.width,u.height);"
	"ux.fillStyle='#4e79a7';const h=u.height-16,w=(u.width-left-10)/n;for(let i=0;i<n;i++){"
	"const f=b[i]/(dt*Math.max(1,D.workers.length));ux.fillRect(left+i*w,h-f*h,Math.ceil(w),f*h);}"
	"ux.fillStyle='#222';ux.font='12px sans-serif';ux.fillText('100%',4,12);ux.fillText('0%',4,h);"
	"ux.fillText(ms(end)+' ms',u.width-80,u.height-2);}\n"
	"g.addEventListener('wheel',e=>{e.preventDefault();const r=g.getBoundingClientRect(),"
	"p=t0+(e.clientX-r.left-left)/W*(t1-t0),f=e.deltaY<0?0.8:1.25;t0=Math.max(0,p-(p-t0)*f);"
	"t1=Math.min(end,p+(t1-p)*f);if(t1-t0<1)t1=t0+1;drawGantt();});\n"
	"let drag=null;g.addEventListener('mousedown',e=>drag={x:e.clientX,t0,t1});"
	"window.addEventListener('mouseup',()=>drag=null);\n"
	"g.addEventListener('dblclick',()=>{t0=0;t1=end;drawGantt();});\n"
	"const tip=document.getElementById('tip');\n"
	"g.addEventListener('mousemove',e=>{const r=g.getBoundingClientRect(),x=e.clientX-r.left,"
	"y=e.clientY-r.top;if(drag){const d=(e.clientX-drag.x)/W*(drag.t1-drag.t0);t0=Math.max(0,drag.t0-d);"
	"t1=Math.min(end,t0+(drag.t1-drag.t0));drawGantt();return;}const wi=Math.floor(y/rowH),"
	"tm=t0+(x-left)/W*(t1-t0);const li=wi-D.workers.length;if(li>=0&&li<D.links.length&&x>left){"
	"const l=D.links[li];const h=D.transfers.find(t=>t[0]==l.id&&t[1]<=tm&&t[1]+t[2]>=tm);"
	"if(!h){tip.style.display='none';return;}tip.style.display='block';tip.style.left=(e.clientX+12)+'px';"
	"tip.style.top=(e.clientY+12)+'px';tip.textContent=l.name+'\\n'+D.steps[h[3]]+': '+"
	"(h[4]/1e6).toFixed(3)+' MB\\nstart '+ms(h[1])+' ms, '+ms(h[2])+' ms';return;}"
	"const w=D.workers[wi];let hit=null;if(w&&x>left)for(const t of D.tasks)"
	"if(t[0]==w.id&&t[1]<=tm&&t[1]+t[2]>=tm){hit=t;break;}if(!hit){tip.style.display='none';return;}"
	"tip.style.display='block';tip.style.left=(e.clientX+12)+'px';tip.style.top=(e.clientY+12)+'px';"
	"tip.textContent='task '+hit[6]+': '+D.codelets[hit[3]]+'\\nstep '+D.steps[hit[4]]+' chunk ('+hit[5]"
	"+')\\nstart '+ms(hit[1])+' ms, '+ms(hit[2])+' ms';});\n"
	"function table(id,head,rows){const t=document.getElementById(id);t.textContent='';"
	"for(const r of [head].concat(rows)){const tr=t.insertRow();for(const c of r){"
	"const td=document.createElement(r===head?'th':'td');td.textContent=c;tr.appendChild(td);}}}\n"
	"table('codelets',['codelet','kind','count','total ms','mean ms','p50 ms','p95 ms','model error'],"
	"D.summary.codelets.map(c=>[c.codelet,c.worker_kind,c.count,ms(c.total_us),ms(c.mean_us),"
	"ms(c.p50_us),ms(c.p95_us),c.model_error==null?'-':(100*c.model_error).toFixed(0)+'%']));\n"
	"table('workers',['worker','busy ms','utilisation','idle'],D.summary.workers.map(w=>[w.name,"
	"ms(w.busy_us),(100*w.utilisation).toFixed(1)+'%',(100*w.idle_share).toFixed(1)+'%']));\n"
	"table('links',['link','MB','transfers'],D.summary.links.length?D.summary.links.map(l=>"
	"['node '+l.src+' \u2192 '+l.dst,(l.bytes/1e6).toFixed(3),l.transfers]):"
	"[['no transfers (every task ran in host memory)','','']]);\n"
	"document.getElementById('critical').textContent='critical path '+ms(D.critical.critical_path_us)"
	"+' ms over '+D.critical.length+' tasks; makespan '+times(D.critical.makespan_over_path)"
	"+' the path, '+times(D.critical.makespan_over_bound)+' the work/workers bound';\n"
	"drawGantt();drawUtil();\n"
	"document.body.setAttribute('data-drawn',String(D.tasks.length));\n"
	"</script></body></html>\n";

/* Index of s in names (appended when new). */
static json_int_t intern(json_t *names, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v)
		if (strcmp(json_string_value(v), s) == 0)
			return (json_int_t)i;
	json_array_append_new(names, json_string(s));
	return (json_int_t)json_array_size(names) - 1;
}

int trace_html_write(const struct trace *tr, const char *source, json_t *critical,
		     const char *out, halo_error_t *err)
{
	json_t *d = json_object(), *tasks = json_array(), *codelets = json_array();
	json_t *steps = json_array(), *workers = json_array();
	for (size_t i = 0; i < tr->n; i++) {
		const struct trace_task *t = &tr->tasks[i];
		char chunk[64] = "";
		if (t->has_chunk)
			snprintf(chunk, sizeof chunk, "%lld,%lld,%lld", (long long)t->chunk[0],
				 (long long)t->chunk[1], (long long)t->chunk[2]);
		json_array_append_new(tasks, json_pack("[i,f,f,I,I,s,I]", t->worker, t->start,
						       t->end - t->start, intern(codelets, t->codelet),
						       intern(steps, t->step), chunk, (json_int_t)t->id));
	}
	for (int w = 0; w < tr->nworkers; w++)
		json_array_append_new(workers, json_pack("{s:i,s:s,s:b}", "id", tr->workers[w].id, "name",
							 tr->workers[w].name, "cuda", tr->workers[w].cuda));
	json_t *links = json_array(), *transfers = json_array();
	for (int l = 0; l < tr->nlinks; l++)
		json_array_append_new(links, json_pack("{s:i,s:s}", "id", tr->links[l].id, "name",
						       tr->links[l].name));
	for (size_t i = 0; i < tr->ntransfers; i++) {
		const struct trace_transfer *t = &tr->transfers[i];
		json_array_append_new(transfers, json_pack("[i,f,f,I,f]", t->link, t->start,
							   t->end - t->start, intern(steps, t->step),
							   t->bytes));
	}
	json_object_set_new(d, "links", links);
	json_object_set_new(d, "transfers", transfers);
	json_object_set_new(d, "source", json_string(source));
	json_object_set_new(d, "tasks", tasks);
	json_object_set_new(d, "codelets", codelets);
	json_object_set_new(d, "steps", steps);
	json_object_set_new(d, "workers", workers);
	json_object_set_new(d, "summary", trace_summary_json(tr));
	json_object_set(d, "critical", critical);
	char *data = json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(d);
	if (!data)
		return halo_error_set(err, HALO_ENOMEM, "out of memory writing %s",
				      out ? out : "the report");
	/* No '<' inside a script element ("</script", "<!--<script" end or
	 * confuse it): JSON strings take it as \u003c. */
	for (char *p = data; (p = strchr(p, '<')); p++)
		*p = '\x01';
	char tmp[4200];
	FILE *f = out ? halo_fs_tmp_open(out, tmp, sizeof tmp) : stdout;
	int rc = HALO_OK;
	if (!f) {
		rc = halo_error_set(err, HALO_EIO, "%s: cannot create: %s", out, strerror(errno));
	} else {
		fputs(page_head, f);
		for (const char *p = data; *p; p++) {
			if (*p == '\x01')
				fputs("\\u003c", f);
			else
				fputc(*p, f);
		}
		fputs(page_script, f);
		if (!out ? fflush(f) != 0 || ferror(f) : halo_fs_tmp_close(f, tmp, out) != 0)
			rc = halo_error_set(err, HALO_EIO, "%s: cannot write: %s",
					    out ? out : "standard output", strerror(errno));
	}
	free(data);
	return rc;
}
