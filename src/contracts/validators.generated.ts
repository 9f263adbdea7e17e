// @ts-nocheck
// Generated from schemas/receipt.schema.json and schemas/status.schema.json by src/receipt/schema-validators.ts
// (npm run docs:validators): do not edit. src/receipt/validate.test.ts checks it is current.
import func0Module from 'ajv/dist/runtime/ucs2length.js';
"use strict";
export const receipt = validate0;
const schema0 = {"$schema":"http://json-schema.org/draft-07/schema#","$id":"https://dropship.dev/schemas/receipt.schema.json","title":"dropship receipt.json","description":"Written last, after every file of a run, and only when every table succeeded. The first three fields follow the Dreamdata model; the others are additive.","type":"object","required":["timestamp","tables","run_id","format","compression"],"properties":{"timestamp":{"description":"Start of the run, UTC, with microseconds.","type":"string","pattern":"^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}Z$"},"tables":{"description":"One entry per exported table or materialized view, keyed by its exact name (a Postgres name: at most 63 bytes).","type":"object","propertyNames":{"minLength":1,"maxLength":63},"additionalProperties":{"$ref":"#/definitions/table"}},"run_id":{"type":"string","pattern":"^\\d{8}T\\d{6}Z-[0-9a-f]{6}$"},"format":{"const":"parquet"},"compression":{"description":"Parquet page codec of every file (the files are Parquet with this codec inside, not compressed as a whole); gzip is the default. 'mixed' only when a destination's codec changed during a run: see each table's.","enum":["gzip","zstd","snappy","none","mixed"]},"layout":{"enum":["dreamdata","portable"]},"selection":{"$ref":"#/definitions/selection"},"sequence":{"description":"Receipt chain: 1 for the destination's first published receipt, +1 for each one after it.","type":"integer","minimum":1},"previous_receipt_sha256":{"description":"Receipt chain: SHA-256 (hex) of the previous receipt.json's exact bytes; null for sequence 1.","type":["string","null"],"pattern":"^[0-9a-f]{64}$"},"snapshot":{"description":"The moment the data was read: the source's transaction snapshot (txid_current_snapshot() text, xmin:xmax:xip) and when it was taken. With consistency 'delivery' every table (and every key-range part) was read in it; with 'table' it is the snapshot most of the data was read in, and each table lists its own under 'snapshots'.","$ref":"#/definitions/snapshot"},"consistency":{"description":"'delivery': the whole dump is one snapshot of the source (joins across tables hold). 'table': it could not be (e.g. a retry after the run's shared snapshot was gone); each table lists the snapshot(s) it was read in.","enum":["delivery","table"]}},"dependencies":{"previous_receipt_sha256":["sequence"],"sequence":["previous_receipt_sha256"]},"additionalProperties":true,"definitions":{"selection":{"description":"Present when the destination does not receive its whole source schema: tenant mode (one tenant's rows) and/or table and column selection. Patterns are globs (* and ?) as registered.","type":"object","required":["global_tables","include_tables","exclude_tables","exclude_columns","left_out"],"properties":{"tenant_column":{"description":"Tenant mode: every exported table with this column holds only the destination's rows.","type":"string","minLength":1},"tenant_column_exported":{"description":"false when the tenant column was left out of the files.","type":"boolean"},"global_tables":{"description":"Tenant mode: tables without the tenant column exported whole (reference data).","type":"array","items":{"type":"string"}},"include_tables":{"type":"array","items":{"type":"string"}},"exclude_tables":{"type":"array","items":{"type":"string"}},"exclude_columns":{"description":"table.column patterns whose columns are not in the files.","type":"array","items":{"type":"string"}},"left_out":{"description":"Tables of the source schema not exported to keep tenants apart, and why.","type":"array","items":{"type":"object","required":["table","reason"],"properties":{"table":{"type":"string"},"reason":{"type":"string"}},"additionalProperties":false}}},"additionalProperties":false},"snapshot":{"type":"object","required":["id","at"],"properties":{"id":{"type":"string","pattern":"^\\d+:\\d+:(\\d+(,\\d+)*)?$"},"at":{"type":"string","pattern":"^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}Z$"}},"additionalProperties":false},"table":{"type":"object","required":["folder","total_file_count"],"properties":{"folder":{"description":"Folder of the table's files, relative to the receipt's prefix.","type":"string","minLength":1,"pattern":"^[^/].*[^/]$"},"total_file_count":{"type":"integer","minimum":1},"row_count":{"type":"integer","minimum":0},"bytes":{"type":"integer","minimum":0},"files":{"type":"array","minItems":1,"items":{"type":"object","required":["key","rows","bytes","sha256"],"properties":{"key":{"description":"Full object key (S3: at most 1,024 bytes).","type":"string","minLength":1,"maxLength":1024},"rows":{"type":"integer","minimum":0},"bytes":{"type":"integer","minimum":12},"sha256":{"type":"string","pattern":"^[0-9a-f]{64}$"}},"additionalProperties":false}},"compression":{"enum":["gzip","zstd","snappy","none"]},"changes":{"description":"Destinations with change sets: what changed since the last successful delivery (README \"Change sets\").","oneOf":[{"type":"object","required":["available","since_run_id","full_refresh","key_columns","inserted","updated","deleted","folder","files"],"properties":{"available":{"const":true},"since_run_id":{"type":["string","null"]},"full_refresh":{"type":"boolean"},"full_refresh_reason":{"enum":["first delivery","schema changed","previous state missing"]},"key_columns":{"type":"array","minItems":1,"items":{"type":"string"}},"inserted":{"type":"integer","minimum":0},"updated":{"type":"integer","minimum":0},"deleted":{"type":"integer","minimum":0},"folder":{"type":"string","minLength":1},"files":{"type":"array","items":{"type":"object","required":["key","rows","bytes","sha256"],"properties":{"key":{"type":"string","minLength":1,"maxLength":1024},"rows":{"type":"integer","minimum":0},"bytes":{"type":"integer","minimum":12},"sha256":{"type":"string","pattern":"^[0-9a-f]{64}$"}},"additionalProperties":false}}},"additionalProperties":false},{"type":"object","required":["available","reason"],"properties":{"available":{"const":false},"reason":{"type":"string","minLength":1}},"additionalProperties":false}]},"snapshots":{"description":"Only with consistency 'table': the snapshot(s) this table was read in, with the key-range parts read in each (part 0 for a table that is not split).","type":"array","minItems":1,"items":{"type":"object","required":["id","at","parts"],"properties":{"id":{"type":"string","minLength":1},"at":{"type":"string","minLength":1},"parts":{"type":"array","minItems":1,"items":{"type":"integer","minimum":0}}},"additionalProperties":false}},"columns":{"type":"array","items":{"type":"object","required":["name","postgres_type","parquet_type","nullable"],"properties":{"name":{"type":"string","minLength":1,"maxLength":63},"postgres_type":{"type":"string","minLength":1},"parquet_type":{"type":"string","minLength":1},"nullable":{"type":"boolean"},"text_form":{"type":"boolean"}},"additionalProperties":false}}},"additionalProperties":true}}};
const schema1 = {"type":"object","required":["folder","total_file_count"],"properties":{"folder":{"description":"Folder of the table's files, relative to the receipt's prefix.","type":"string","minLength":1,"pattern":"^[^/].*[^/]$"},"total_file_count":{"type":"integer","minimum":1},"row_count":{"type":"integer","minimum":0},"bytes":{"type":"integer","minimum":0},"files":{"type":"array","minItems":1,"items":{"type":"object","required":["key","rows","bytes","sha256"],"properties":{"key":{"description":"Full object key (S3: at most 1,024 bytes).","type":"string","minLength":1,"maxLength":1024},"rows":{"type":"integer","minimum":0},"bytes":{"type":"integer","minimum":12},"sha256":{"type":"string","pattern":"^[0-9a-f]{64}$"}},"additionalProperties":false}},"compression":{"enum":["gzip","zstd","snappy","none"]},"changes":{"description":"Destinations with change sets: what changed since the last successful delivery (README \"Change sets\").","oneOf":[{"type":"object","required":["available","since_run_id","full_refresh","key_columns","inserted","updated","deleted","folder","files"],"properties":{"available":{"const":true},"since_run_id":{"type":["string","null"]},"full_refresh":{"type":"boolean"},"full_refresh_reason":{"enum":["first delivery","schema changed","previous state missing"]},"key_columns":{"type":"array","minItems":1,"items":{"type":"string"}},"inserted":{"type":"integer","minimum":0},"updated":{"type":"integer","minimum":0},"deleted":{"type":"integer","minimum":0},"folder":{"type":"string","minLength":1},"files":{"type":"array","items":{"type":"object","required":["key","rows","bytes","sha256"],"properties":{"key":{"type":"string","minLength":1,"maxLength":1024},"rows":{"type":"integer","minimum":0},"bytes":{"type":"integer","minimum":12},"sha256":{"type":"string","pattern":"^[0-9a-f]{64}$"}},"additionalProperties":false}}},"additionalProperties":false},{"type":"object","required":["available","reason"],"properties":{"available":{"const":false},"reason":{"type":"string","minLength":1}},"additionalProperties":false}]},"snapshots":{"description":"Only with consistency 'table': the snapshot(s) this table was read in, with the key-range parts read in each (part 0 for a table that is not split).","type":"array","minItems":1,"items":{"type":"object","required":["id","at","parts"],"properties":{"id":{"type":"string","minLength":1},"at":{"type":"string","minLength":1},"parts":{"type":"array","minItems":1,"items":{"type":"integer","minimum":0}}},"additionalProperties":false}},"columns":{"type":"array","items":{"type":"object","required":["name","postgres_type","parquet_type","nullable"],"properties":{"name":{"type":"string","minLength":1,"maxLength":63},"postgres_type":{"type":"string","minLength":1},"parquet_type":{"type":"string","minLength":1},"nullable":{"type":"boolean"},"text_form":{"type":"boolean"}},"additionalProperties":false}}},"additionalProperties":true};
const schema2 = {"description":"Present when the destination does not receive its whole source schema: tenant mode (one tenant's rows) and/or table and column selection. Patterns are globs (* and ?) as registered.","type":"object","required":["global_tables","include_tables","exclude_tables","exclude_columns","left_out"],"properties":{"tenant_column":{"description":"Tenant mode: every exported table with this column holds only the destination's rows.","type":"string","minLength":1},"tenant_column_exported":{"description":"false when the tenant column was left out of the files.","type":"boolean"},"global_tables":{"description":"Tenant mode: tables without the tenant column exported whole (reference data).","type":"array","items":{"type":"string"}},"include_tables":{"type":"array","items":{"type":"string"}},"exclude_tables":{"type":"array","items":{"type":"string"}},"exclude_columns":{"description":"table.column patterns whose columns are not in the files.","type":"array","items":{"type":"string"}},"left_out":{"description":"Tables of the source schema not exported to keep tenants apart, and why.","type":"array","items":{"type":"object","required":["table","reason"],"properties":{"table":{"type":"string"},"reason":{"type":"string"}},"additionalProperties":false}}},"additionalProperties":false};
const schema3 = {"type":"object","required":["id","at"],"properties":{"id":{"type":"string","pattern":"^\\d+:\\d+:(\\d+(,\\d+)*)?$"},"at":{"type":"string","pattern":"^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}Z$"}},"additionalProperties":false};
const pattern0 = new RegExp("^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}Z$", "u");
const pattern1 = new RegExp("^[^/].*[^/]$", "u");
const pattern2 = new RegExp("^[0-9a-f]{64}$", "u");
const pattern4 = new RegExp("^\\d{8}T\\d{6}Z-[0-9a-f]{6}$", "u");
const pattern6 = new RegExp("^\\d+:\\d+:(\\d+(,\\d+)*)?$", "u");
const func0 = typeof func0Module === 'function' ? func0Module : func0Module.default;
const func5 = Object.prototype.hasOwnProperty;

function validate0(data, {instancePath="", parentData, parentDataProperty, rootData=data}={}){
/*# sourceURL="https://dropship.dev/schemas/receipt.schema.json" */;
let vErrors = null;
let errors = 0;
if(data && typeof data == "object" && !Array.isArray(data)){
if(data.timestamp === undefined){
const err0 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "timestamp"},message:"must have required property '"+"timestamp"+"'"};
if(vErrors === null){
vErrors = [err0];
}
else {
vErrors.push(err0);
}
errors++;
}
if(data.tables === undefined){
const err1 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "tables"},message:"must have required property '"+"tables"+"'"};
if(vErrors === null){
vErrors = [err1];
}
else {
vErrors.push(err1);
}
errors++;
}
if(data.run_id === undefined){
const err2 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "run_id"},message:"must have required property '"+"run_id"+"'"};
if(vErrors === null){
vErrors = [err2];
}
else {
vErrors.push(err2);
}
errors++;
}
if(data.format === undefined){
const err3 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "format"},message:"must have required property '"+"format"+"'"};
if(vErrors === null){
vErrors = [err3];
}
else {
vErrors.push(err3);
}
errors++;
}
if(data.compression === undefined){
const err4 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "compression"},message:"must have required property '"+"compression"+"'"};
if(vErrors === null){
vErrors = [err4];
}
else {
vErrors.push(err4);
}
errors++;
}
if(data.previous_receipt_sha256 !== undefined){
if(data.sequence === undefined){
const err5 = {instancePath,schemaPath:"#/dependencies",keyword:"dependencies",params:{property: "previous_receipt_sha256",
    missingProperty: "sequence",
    depsCount: 1,
    deps: "sequence"},message:"must have property sequence when property previous_receipt_sha256 is present"};
if(vErrors === null){
vErrors = [err5];
}
else {
vErrors.push(err5);
}
errors++;
}
}
if(data.sequence !== undefined){
if(data.previous_receipt_sha256 === undefined){
const err6 = {instancePath,schemaPath:"#/dependencies",keyword:"dependencies",params:{property: "sequence",
    missingProperty: "previous_receipt_sha256",
    depsCount: 1,
    deps: "previous_receipt_sha256"},message:"must have property previous_receipt_sha256 when property sequence is present"};
if(vErrors === null){
vErrors = [err6];
}
else {
vErrors.push(err6);
}
errors++;
}
}
if(data.timestamp !== undefined){
let data0 = data.timestamp;
if(typeof data0 === "string"){
if(!pattern0.test(data0)){
const err7 = {instancePath:instancePath+"/timestamp",schemaPath:"#/properties/timestamp/pattern",keyword:"pattern",params:{pattern: "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}Z$"},message:"must match pattern \""+"^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}Z$"+"\""};
if(vErrors === null){
vErrors = [err7];
}
else {
vErrors.push(err7);
}
errors++;
}
}
else {
const err8 = {instancePath:instancePath+"/timestamp",schemaPath:"#/properties/timestamp/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err8];
}
else {
vErrors.push(err8);
}
errors++;
}
}
if(data.tables !== undefined){
let data1 = data.tables;
if(data1 && typeof data1 == "object" && !Array.isArray(data1)){
for(const key0 in data1){
const _errs6 = errors;
if(typeof key0 === "string"){
if(func0(key0) > 63){
const err9 = {instancePath:instancePath+"/tables",schemaPath:"#/properties/tables/propertyNames/maxLength",keyword:"maxLength",params:{limit: 63},message:"must NOT have more than 63 characters",propertyName:key0};
if(vErrors === null){
vErrors = [err9];
}
else {
vErrors.push(err9);
}
errors++;
}
if(func0(key0) < 1){
const err10 = {instancePath:instancePath+"/tables",schemaPath:"#/properties/tables/propertyNames/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",propertyName:key0};
if(vErrors === null){
vErrors = [err10];
}
else {
vErrors.push(err10);
}
errors++;
}
}
var valid2 = _errs6 === errors;
if(!valid2){
const err11 = {instancePath:instancePath+"/tables",schemaPath:"#/properties/tables/propertyNames",keyword:"propertyNames",params:{propertyName: key0},message:"property name must be valid"};
if(vErrors === null){
vErrors = [err11];
}
else {
vErrors.push(err11);
}
errors++;
}
}
for(const key1 in data1){
let data2 = data1[key1];
if(data2 && typeof data2 == "object" && !Array.isArray(data2)){
if(data2.folder === undefined){
const err12 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1"),schemaPath:"#/definitions/table/required",keyword:"required",params:{missingProperty: "folder"},message:"must have required property '"+"folder"+"'"};
if(vErrors === null){
vErrors = [err12];
}
else {
vErrors.push(err12);
}
errors++;
}
if(data2.total_file_count === undefined){
const err13 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1"),schemaPath:"#/definitions/table/required",keyword:"required",params:{missingProperty: "total_file_count"},message:"must have required property '"+"total_file_count"+"'"};
if(vErrors === null){
vErrors = [err13];
}
else {
vErrors.push(err13);
}
errors++;
}
if(data2.folder !== undefined){
let data3 = data2.folder;
if(typeof data3 === "string"){
if(func0(data3) < 1){
const err14 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/folder",schemaPath:"#/definitions/table/properties/folder/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err14];
}
else {
vErrors.push(err14);
}
errors++;
}
if(!pattern1.test(data3)){
const err15 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/folder",schemaPath:"#/definitions/table/properties/folder/pattern",keyword:"pattern",params:{pattern: "^[^/].*[^/]$"},message:"must match pattern \""+"^[^/].*[^/]$"+"\""};
if(vErrors === null){
vErrors = [err15];
}
else {
vErrors.push(err15);
}
errors++;
}
}
else {
const err16 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/folder",schemaPath:"#/definitions/table/properties/folder/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err16];
}
else {
vErrors.push(err16);
}
errors++;
}
}
if(data2.total_file_count !== undefined){
let data4 = data2.total_file_count;
if(!((typeof data4 == "number") && (!(data4 % 1) && !isNaN(data4)))){
const err17 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/total_file_count",schemaPath:"#/definitions/table/properties/total_file_count/type",keyword:"type",params:{type: "integer"},message:"must be integer"};
if(vErrors === null){
vErrors = [err17];
}
else {
vErrors.push(err17);
}
errors++;
}
if(typeof data4 == "number"){
if(data4 < 1 || isNaN(data4)){
const err18 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/total_file_count",schemaPath:"#/definitions/table/properties/total_file_count/minimum",keyword:"minimum",params:{comparison: ">=", limit: 1},message:"must be >= 1"};
if(vErrors === null){
vErrors = [err18];
}
else {
vErrors.push(err18);
}
errors++;
}
}
}
if(data2.row_count !== undefined){
let data5 = data2.row_count;
if(!((typeof data5 == "number") && (!(data5 % 1) && !isNaN(data5)))){
const err19 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/row_count",schemaPath:"#/definitions/table/properties/row_count/type",keyword:"type",params:{type: "integer"},message:"must be integer"};
if(vErrors === null){
vErrors = [err19];
}
else {
vErrors.push(err19);
}
errors++;
}
if(typeof data5 == "number"){
if(data5 < 0 || isNaN(data5)){
const err20 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/row_count",schemaPath:"#/definitions/table/properties/row_count/minimum",keyword:"minimum",params:{comparison: ">=", limit: 0},message:"must be >= 0"};
if(vErrors === null){
vErrors = [err20];
}
else {
vErrors.push(err20);
}
errors++;
}
}
}
if(data2.bytes !== undefined){
let data6 = data2.bytes;
if(!((typeof data6 == "number") && (!(data6 % 1) && !isNaN(data6)))){
const err21 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/bytes",schemaPath:"#/definitions/table/properties/bytes/type",keyword:"type",params:{type: "integer"},message:"must be integer"};
if(vErrors === null){
vErrors = [err21];
}
else {
vErrors.push(err21);
}
errors++;
}
if(typeof data6 == "number"){
if(data6 < 0 || isNaN(data6)){
const err22 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/bytes",schemaPath:"#/definitions/table/properties/bytes/minimum",keyword:"minimum",params:{comparison: ">=", limit: 0},message:"must be >= 0"};
if(vErrors === null){
vErrors = [err22];
}
else {
vErrors.push(err22);
}
errors++;
}
}
}
if(data2.files !== undefined){
let data7 = data2.files;
if(Array.isArray(data7)){
if(data7.length < 1){
const err23 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files",schemaPath:"#/definitions/table/properties/files/minItems",keyword:"minItems",params:{limit: 1},message:"must NOT have fewer than 1 items"};
if(vErrors === null){
vErrors = [err23];
}
else {
vErrors.push(err23);
}
errors++;
}
const len0 = data7.length;
for(let i0=0; i0<len0; i0++){
let data8 = data7[i0];
if(data8 && typeof data8 == "object" && !Array.isArray(data8)){
if(data8.key === undefined){
const err24 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files/" + i0,schemaPath:"#/definitions/table/properties/files/items/required",keyword:"required",params:{missingProperty: "key"},message:"must have required property '"+"key"+"'"};
if(vErrors === null){
vErrors = [err24];
}
else {
vErrors.push(err24);
}
errors++;
}
if(data8.rows === undefined){
const err25 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files/" + i0,schemaPath:"#/definitions/table/properties/files/items/required",keyword:"required",params:{missingProperty: "rows"},message:"must have required property '"+"rows"+"'"};
if(vErrors === null){
vErrors = [err25];
}
else {
vErrors.push(err25);
}
errors++;
}
if(data8.bytes === undefined){
const err26 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files/" + i0,schemaPath:"#/definitions/table/properties/files/items/required",keyword:"required",params:{missingProperty: "bytes"},message:"must have required property '"+"bytes"+"'"};
if(vErrors === null){
vErrors = [err26];
}
else {
vErrors.push(err26);
}
errors++;
}
if(data8.sha256 === undefined){
const err27 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files/" + i0,schemaPath:"#/definitions/table/properties/files/items/required",keyword:"required",params:{missingProperty: "sha256"},message:"must have required property '"+"sha256"+"'"};
if(vErrors === null){
vErrors = [err27];
}
else {
vErrors.push(err27);
}
errors++;
}
for(const key2 in data8){
if(!((((key2 === "key") || (key2 === "rows")) || (key2 === "bytes")) || (key2 === "sha256"))){
const err28 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files/" + i0,schemaPath:"#/definitions/table/properties/files/items/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key2},message:"must NOT have additional properties"};
if(vErrors === null){
vErrors = [err28];
}
else {
vErrors.push(err28);
}
errors++;
}
}
if(data8.key !== undefined){
let data9 = data8.key;
if(typeof data9 === "string"){
if(func0(data9) > 1024){
const err29 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files/" + i0+"/key",schemaPath:"#/definitions/table/properties/files/items/properties/key/maxLength",keyword:"maxLength",params:{limit: 1024},message:"must NOT have more than 1024 characters"};
if(vErrors === null){
vErrors = [err29];
}
else {
vErrors.push(err29);
}
errors++;
}
if(func0(data9) < 1){
const err30 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files/" + i0+"/key",schemaPath:"#/definitions/table/properties/files/items/properties/key/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err30];
}
else {
vErrors.push(err30);
}
errors++;
}
}
else {
const err31 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files/" + i0+"/key",schemaPath:"#/definitions/table/properties/files/items/properties/key/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err31];
}
else {
vErrors.push(err31);
}
errors++;
}
}
if(data8.rows !== undefined){
let data10 = data8.rows;
if(!((typeof data10 == "number") && (!(data10 % 1) && !isNaN(data10)))){
const err32 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files/" + i0+"/rows",schemaPath:"#/definitions/table/properties/files/items/properties/rows/type",keyword:"type",params:{type: "integer"},message:"must be integer"};
if(vErrors === null){
vErrors = [err32];
}
else {
vErrors.push(err32);
}
errors++;
}
if(typeof data10 == "number"){
if(data10 < 0 || isNaN(data10)){
const err33 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files/" + i0+"/rows",schemaPath:"#/definitions/table/properties/files/items/properties/rows/minimum",keyword:"minimum",params:{comparison: ">=", limit: 0},message:"must be >= 0"};
if(vErrors === null){
vErrors = [err33];
}
else {
vErrors.push(err33);
}
errors++;
}
}
}
if(data8.bytes !== undefined){
let data11 = data8.bytes;
if(!((typeof data11 == "number") && (!(data11 % 1) && !isNaN(data11)))){
const err34 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files/" + i0+"/bytes",schemaPath:"#/definitions/table/properties/files/items/properties/bytes/type",keyword:"type",params:{type: "integer"},message:"must be integer"};
if(vErrors === null){
vErrors = [err34];
}
else {
vErrors.push(err34);
}
errors++;
}
if(typeof data11 == "number"){
if(data11 < 12 || isNaN(data11)){
const err35 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files/" + i0+"/bytes",schemaPath:"#/definitions/table/properties/files/items/properties/bytes/minimum",keyword:"minimum",params:{comparison: ">=", limit: 12},message:"must be >= 12"};
if(vErrors === null){
vErrors = [err35];
}
else {
vErrors.push(err35);
}
errors++;
}
}
}
if(data8.sha256 !== undefined){
let data12 = data8.sha256;
if(typeof data12 === "string"){
if(!pattern2.test(data12)){
const err36 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files/" + i0+"/sha256",schemaPath:"#/definitions/table/properties/files/items/properties/sha256/pattern",keyword:"pattern",params:{pattern: "^[0-9a-f]{64}$"},message:"must match pattern \""+"^[0-9a-f]{64}$"+"\""};
if(vErrors === null){
vErrors = [err36];
}
else {
vErrors.push(err36);
}
errors++;
}
}
else {
const err37 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files/" + i0+"/sha256",schemaPath:"#/definitions/table/properties/files/items/properties/sha256/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err37];
}
else {
vErrors.push(err37);
}
errors++;
}
}
}
else {
const err38 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files/" + i0,schemaPath:"#/definitions/table/properties/files/items/type",keyword:"type",params:{type: "object"},message:"must be object"};
if(vErrors === null){
vErrors = [err38];
}
else {
vErrors.push(err38);
}
errors++;
}
}
}
else {
const err39 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/files",schemaPath:"#/definitions/table/properties/files/type",keyword:"type",params:{type: "array"},message:"must be array"};
if(vErrors === null){
vErrors = [err39];
}
else {
vErrors.push(err39);
}
errors++;
}
}
if(data2.compression !== undefined){
let data13 = data2.compression;
if(!((((data13 === "gzip") || (data13 === "zstd")) || (data13 === "snappy")) || (data13 === "none"))){
const err40 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/compression",schemaPath:"#/definitions/table/properties/compression/enum",keyword:"enum",params:{allowedValues: schema1.properties.compression.enum},message:"must be equal to one of the allowed values"};
if(vErrors === null){
vErrors = [err40];
}
else {
vErrors.push(err40);
}
errors++;
}
}
if(data2.changes !== undefined){
let data14 = data2.changes;
const _errs35 = errors;
let valid9 = false;
let passing0 = null;
const _errs36 = errors;
if(data14 && typeof data14 == "object" && !Array.isArray(data14)){
if(data14.available === undefined){
const err41 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes",schemaPath:"#/definitions/table/properties/changes/oneOf/0/required",keyword:"required",params:{missingProperty: "available"},message:"must have required property '"+"available"+"'"};
if(vErrors === null){
vErrors = [err41];
}
else {
vErrors.push(err41);
}
errors++;
}
if(data14.since_run_id === undefined){
const err42 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes",schemaPath:"#/definitions/table/properties/changes/oneOf/0/required",keyword:"required",params:{missingProperty: "since_run_id"},message:"must have required property '"+"since_run_id"+"'"};
if(vErrors === null){
vErrors = [err42];
}
else {
vErrors.push(err42);
}
errors++;
}
if(data14.full_refresh === undefined){
const err43 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes",schemaPath:"#/definitions/table/properties/changes/oneOf/0/required",keyword:"required",params:{missingProperty: "full_refresh"},message:"must have required property '"+"full_refresh"+"'"};
if(vErrors === null){
vErrors = [err43];
}
else {
vErrors.push(err43);
}
errors++;
}
if(data14.key_columns === undefined){
const err44 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes",schemaPath:"#/definitions/table/properties/changes/oneOf/0/required",keyword:"required",params:{missingProperty: "key_columns"},message:"must have required property '"+"key_columns"+"'"};
if(vErrors === null){
vErrors = [err44];
}
else {
vErrors.push(err44);
}
errors++;
}
if(data14.inserted === undefined){
const err45 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes",schemaPath:"#/definitions/table/properties/changes/oneOf/0/required",keyword:"required",params:{missingProperty: "inserted"},message:"must have required property '"+"inserted"+"'"};
if(vErrors === null){
vErrors = [err45];
}
else {
vErrors.push(err45);
}
errors++;
}
if(data14.updated === undefined){
const err46 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes",schemaPath:"#/definitions/table/properties/changes/oneOf/0/required",keyword:"required",params:{missingProperty: "updated"},message:"must have required property '"+"updated"+"'"};
if(vErrors === null){
vErrors = [err46];
}
else {
vErrors.push(err46);
}
errors++;
}
if(data14.deleted === undefined){
const err47 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes",schemaPath:"#/definitions/table/properties/changes/oneOf/0/required",keyword:"required",params:{missingProperty: "deleted"},message:"must have required property '"+"deleted"+"'"};
if(vErrors === null){
vErrors = [err47];
}
else {
vErrors.push(err47);
}
errors++;
}
if(data14.folder === undefined){
const err48 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes",schemaPath:"#/definitions/table/properties/changes/oneOf/0/required",keyword:"required",params:{missingProperty: "folder"},message:"must have required property '"+"folder"+"'"};
if(vErrors === null){
vErrors = [err48];
}
else {
vErrors.push(err48);
}
errors++;
}
if(data14.files === undefined){
const err49 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes",schemaPath:"#/definitions/table/properties/changes/oneOf/0/required",keyword:"required",params:{missingProperty: "files"},message:"must have required property '"+"files"+"'"};
if(vErrors === null){
vErrors = [err49];
}
else {
vErrors.push(err49);
}
errors++;
}
for(const key3 in data14){
if(!(func5.call(schema1.properties.changes.oneOf[0].properties, key3))){
const err50 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes",schemaPath:"#/definitions/table/properties/changes/oneOf/0/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key3},message:"must NOT have additional properties"};
if(vErrors === null){
vErrors = [err50];
}
else {
vErrors.push(err50);
}
errors++;
}
}
if(data14.available !== undefined){
if(true !== data14.available){
const err51 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/available",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/available/const",keyword:"const",params:{allowedValue: true},message:"must be equal to constant"};
if(vErrors === null){
vErrors = [err51];
}
else {
vErrors.push(err51);
}
errors++;
}
}
if(data14.since_run_id !== undefined){
let data16 = data14.since_run_id;
if((typeof data16 !== "string") && (data16 !== null)){
const err52 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/since_run_id",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/since_run_id/type",keyword:"type",params:{type: schema1.properties.changes.oneOf[0].properties.since_run_id.type},message:"must be string,null"};
if(vErrors === null){
vErrors = [err52];
}
else {
vErrors.push(err52);
}
errors++;
}
}
if(data14.full_refresh !== undefined){
if(typeof data14.full_refresh !== "boolean"){
const err53 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/full_refresh",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/full_refresh/type",keyword:"type",params:{type: "boolean"},message:"must be boolean"};
if(vErrors === null){
vErrors = [err53];
}
else {
vErrors.push(err53);
}
errors++;
}
}
if(data14.full_refresh_reason !== undefined){
let data18 = data14.full_refresh_reason;
if(!(((data18 === "first delivery") || (data18 === "schema changed")) || (data18 === "previous state missing"))){
const err54 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/full_refresh_reason",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/full_refresh_reason/enum",keyword:"enum",params:{allowedValues: schema1.properties.changes.oneOf[0].properties.full_refresh_reason.enum},message:"must be equal to one of the allowed values"};
if(vErrors === null){
vErrors = [err54];
}
else {
vErrors.push(err54);
}
errors++;
}
}
if(data14.key_columns !== undefined){
let data19 = data14.key_columns;
if(Array.isArray(data19)){
if(data19.length < 1){
const err55 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/key_columns",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/key_columns/minItems",keyword:"minItems",params:{limit: 1},message:"must NOT have fewer than 1 items"};
if(vErrors === null){
vErrors = [err55];
}
else {
vErrors.push(err55);
}
errors++;
}
const len1 = data19.length;
for(let i1=0; i1<len1; i1++){
if(typeof data19[i1] !== "string"){
const err56 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/key_columns/" + i1,schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/key_columns/items/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err56];
}
else {
vErrors.push(err56);
}
errors++;
}
}
}
else {
const err57 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/key_columns",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/key_columns/type",keyword:"type",params:{type: "array"},message:"must be array"};
if(vErrors === null){
vErrors = [err57];
}
else {
vErrors.push(err57);
}
errors++;
}
}
if(data14.inserted !== undefined){
let data21 = data14.inserted;
if(!((typeof data21 == "number") && (!(data21 % 1) && !isNaN(data21)))){
const err58 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/inserted",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/inserted/type",keyword:"type",params:{type: "integer"},message:"must be integer"};
if(vErrors === null){
vErrors = [err58];
}
else {
vErrors.push(err58);
}
errors++;
}
if(typeof data21 == "number"){
if(data21 < 0 || isNaN(data21)){
const err59 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/inserted",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/inserted/minimum",keyword:"minimum",params:{comparison: ">=", limit: 0},message:"must be >= 0"};
if(vErrors === null){
vErrors = [err59];
}
else {
vErrors.push(err59);
}
errors++;
}
}
}
if(data14.updated !== undefined){
let data22 = data14.updated;
if(!((typeof data22 == "number") && (!(data22 % 1) && !isNaN(data22)))){
const err60 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/updated",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/updated/type",keyword:"type",params:{type: "integer"},message:"must be integer"};
if(vErrors === null){
vErrors = [err60];
}
else {
vErrors.push(err60);
}
errors++;
}
if(typeof data22 == "number"){
if(data22 < 0 || isNaN(data22)){
const err61 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/updated",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/updated/minimum",keyword:"minimum",params:{comparison: ">=", limit: 0},message:"must be >= 0"};
if(vErrors === null){
vErrors = [err61];
}
else {
vErrors.push(err61);
}
errors++;
}
}
}
if(data14.deleted !== undefined){
let data23 = data14.deleted;
if(!((typeof data23 == "number") && (!(data23 % 1) && !isNaN(data23)))){
const err62 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/deleted",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/deleted/type",keyword:"type",params:{type: "integer"},message:"must be integer"};
if(vErrors === null){
vErrors = [err62];
}
else {
vErrors.push(err62);
}
errors++;
}
if(typeof data23 == "number"){
if(data23 < 0 || isNaN(data23)){
const err63 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/deleted",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/deleted/minimum",keyword:"minimum",params:{comparison: ">=", limit: 0},message:"must be >= 0"};
if(vErrors === null){
vErrors = [err63];
}
else {
vErrors.push(err63);
}
errors++;
}
}
}
if(data14.folder !== undefined){
let data24 = data14.folder;
if(typeof data24 === "string"){
if(func0(data24) < 1){
const err64 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/folder",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/folder/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err64];
}
else {
vErrors.push(err64);
}
errors++;
}
}
else {
const err65 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/folder",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/folder/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err65];
}
else {
vErrors.push(err65);
}
errors++;
}
}
if(data14.files !== undefined){
let data25 = data14.files;
if(Array.isArray(data25)){
const len2 = data25.length;
for(let i2=0; i2<len2; i2++){
let data26 = data25[i2];
if(data26 && typeof data26 == "object" && !Array.isArray(data26)){
if(data26.key === undefined){
const err66 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/files/" + i2,schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/files/items/required",keyword:"required",params:{missingProperty: "key"},message:"must have required property '"+"key"+"'"};
if(vErrors === null){
vErrors = [err66];
}
else {
vErrors.push(err66);
}
errors++;
}
if(data26.rows === undefined){
const err67 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/files/" + i2,schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/files/items/required",keyword:"required",params:{missingProperty: "rows"},message:"must have required property '"+"rows"+"'"};
if(vErrors === null){
vErrors = [err67];
}
else {
vErrors.push(err67);
}
errors++;
}
if(data26.bytes === undefined){
const err68 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/files/" + i2,schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/files/items/required",keyword:"required",params:{missingProperty: "bytes"},message:"must have required property '"+"bytes"+"'"};
if(vErrors === null){
vErrors = [err68];
}
else {
vErrors.push(err68);
}
errors++;
}
if(data26.sha256 === undefined){
const err69 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/files/" + i2,schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/files/items/required",keyword:"required",params:{missingProperty: "sha256"},message:"must have required property '"+"sha256"+"'"};
if(vErrors === null){
vErrors = [err69];
}
else {
vErrors.push(err69);
}
errors++;
}
for(const key4 in data26){
if(!((((key4 === "key") || (key4 === "rows")) || (key4 === "bytes")) || (key4 === "sha256"))){
const err70 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/files/" + i2,schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/files/items/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key4},message:"must NOT have additional properties"};
if(vErrors === null){
vErrors = [err70];
}
else {
vErrors.push(err70);
}
errors++;
}
}
if(data26.key !== undefined){
let data27 = data26.key;
if(typeof data27 === "string"){
if(func0(data27) > 1024){
const err71 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/files/" + i2+"/key",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/files/items/properties/key/maxLength",keyword:"maxLength",params:{limit: 1024},message:"must NOT have more than 1024 characters"};
if(vErrors === null){
vErrors = [err71];
}
else {
vErrors.push(err71);
}
errors++;
}
if(func0(data27) < 1){
const err72 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/files/" + i2+"/key",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/files/items/properties/key/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err72];
}
else {
vErrors.push(err72);
}
errors++;
}
}
else {
const err73 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/files/" + i2+"/key",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/files/items/properties/key/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err73];
}
else {
vErrors.push(err73);
}
errors++;
}
}
if(data26.rows !== undefined){
let data28 = data26.rows;
if(!((typeof data28 == "number") && (!(data28 % 1) && !isNaN(data28)))){
const err74 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/files/" + i2+"/rows",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/files/items/properties/rows/type",keyword:"type",params:{type: "integer"},message:"must be integer"};
if(vErrors === null){
vErrors = [err74];
}
else {
vErrors.push(err74);
}
errors++;
}
if(typeof data28 == "number"){
if(data28 < 0 || isNaN(data28)){
const err75 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/files/" + i2+"/rows",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/files/items/properties/rows/minimum",keyword:"minimum",params:{comparison: ">=", limit: 0},message:"must be >= 0"};
if(vErrors === null){
vErrors = [err75];
}
else {
vErrors.push(err75);
}
errors++;
}
}
}
if(data26.bytes !== undefined){
let data29 = data26.bytes;
if(!((typeof data29 == "number") && (!(data29 % 1) && !isNaN(data29)))){
const err76 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/files/" + i2+"/bytes",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/files/items/properties/bytes/type",keyword:"type",params:{type: "integer"},message:"must be integer"};
if(vErrors === null){
vErrors = [err76];
}
else {
vErrors.push(err76);
}
errors++;
}
if(typeof data29 == "number"){
if(data29 < 12 || isNaN(data29)){
const err77 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/files/" + i2+"/bytes",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/files/items/properties/bytes/minimum",keyword:"minimum",params:{comparison: ">=", limit: 12},message:"must be >= 12"};
if(vErrors === null){
vErrors = [err77];
}
else {
vErrors.push(err77);
}
errors++;
}
}
}
if(data26.sha256 !== undefined){
let data30 = data26.sha256;
if(typeof data30 === "string"){
if(!pattern2.test(data30)){
const err78 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/files/" + i2+"/sha256",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/files/items/properties/sha256/pattern",keyword:"pattern",params:{pattern: "^[0-9a-f]{64}$"},message:"must match pattern \""+"^[0-9a-f]{64}$"+"\""};
if(vErrors === null){
vErrors = [err78];
}
else {
vErrors.push(err78);
}
errors++;
}
}
else {
const err79 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/files/" + i2+"/sha256",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/files/items/properties/sha256/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err79];
}
else {
vErrors.push(err79);
}
errors++;
}
}
}
else {
const err80 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/files/" + i2,schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/files/items/type",keyword:"type",params:{type: "object"},message:"must be object"};
if(vErrors === null){
vErrors = [err80];
}
else {
vErrors.push(err80);
}
errors++;
}
}
}
else {
const err81 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/files",schemaPath:"#/definitions/table/properties/changes/oneOf/0/properties/files/type",keyword:"type",params:{type: "array"},message:"must be array"};
if(vErrors === null){
vErrors = [err81];
}
else {
vErrors.push(err81);
}
errors++;
}
}
}
else {
const err82 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes",schemaPath:"#/definitions/table/properties/changes/oneOf/0/type",keyword:"type",params:{type: "object"},message:"must be object"};
if(vErrors === null){
vErrors = [err82];
}
else {
vErrors.push(err82);
}
errors++;
}
var _valid0 = _errs36 === errors;
if(_valid0){
valid9 = true;
passing0 = 0;
}
const _errs70 = errors;
if(data14 && typeof data14 == "object" && !Array.isArray(data14)){
if(data14.available === undefined){
const err83 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes",schemaPath:"#/definitions/table/properties/changes/oneOf/1/required",keyword:"required",params:{missingProperty: "available"},message:"must have required property '"+"available"+"'"};
if(vErrors === null){
vErrors = [err83];
}
else {
vErrors.push(err83);
}
errors++;
}
if(data14.reason === undefined){
const err84 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes",schemaPath:"#/definitions/table/properties/changes/oneOf/1/required",keyword:"required",params:{missingProperty: "reason"},message:"must have required property '"+"reason"+"'"};
if(vErrors === null){
vErrors = [err84];
}
else {
vErrors.push(err84);
}
errors++;
}
for(const key5 in data14){
if(!((key5 === "available") || (key5 === "reason"))){
const err85 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes",schemaPath:"#/definitions/table/properties/changes/oneOf/1/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key5},message:"must NOT have additional properties"};
if(vErrors === null){
vErrors = [err85];
}
else {
vErrors.push(err85);
}
errors++;
}
}
if(data14.available !== undefined){
if(false !== data14.available){
const err86 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/available",schemaPath:"#/definitions/table/properties/changes/oneOf/1/properties/available/const",keyword:"const",params:{allowedValue: false},message:"must be equal to constant"};
if(vErrors === null){
vErrors = [err86];
}
else {
vErrors.push(err86);
}
errors++;
}
}
if(data14.reason !== undefined){
let data32 = data14.reason;
if(typeof data32 === "string"){
if(func0(data32) < 1){
const err87 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/reason",schemaPath:"#/definitions/table/properties/changes/oneOf/1/properties/reason/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err87];
}
else {
vErrors.push(err87);
}
errors++;
}
}
else {
const err88 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes/reason",schemaPath:"#/definitions/table/properties/changes/oneOf/1/properties/reason/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err88];
}
else {
vErrors.push(err88);
}
errors++;
}
}
}
else {
const err89 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes",schemaPath:"#/definitions/table/properties/changes/oneOf/1/type",keyword:"type",params:{type: "object"},message:"must be object"};
if(vErrors === null){
vErrors = [err89];
}
else {
vErrors.push(err89);
}
errors++;
}
var _valid0 = _errs70 === errors;
if(_valid0 && valid9){
valid9 = false;
passing0 = [passing0, 1];
}
else {
if(_valid0){
valid9 = true;
passing0 = 1;
}
}
if(!valid9){
const err90 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/changes",schemaPath:"#/definitions/table/properties/changes/oneOf",keyword:"oneOf",params:{passingSchemas: passing0},message:"must match exactly one schema in oneOf"};
if(vErrors === null){
vErrors = [err90];
}
else {
vErrors.push(err90);
}
errors++;
}
else {
errors = _errs35;
if(vErrors !== null){
if(_errs35){
vErrors.length = _errs35;
}
else {
vErrors = null;
}
}
}
}
if(data2.snapshots !== undefined){
let data33 = data2.snapshots;
if(Array.isArray(data33)){
if(data33.length < 1){
const err91 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/snapshots",schemaPath:"#/definitions/table/properties/snapshots/minItems",keyword:"minItems",params:{limit: 1},message:"must NOT have fewer than 1 items"};
if(vErrors === null){
vErrors = [err91];
}
else {
vErrors.push(err91);
}
errors++;
}
const len3 = data33.length;
for(let i3=0; i3<len3; i3++){
let data34 = data33[i3];
if(data34 && typeof data34 == "object" && !Array.isArray(data34)){
if(data34.id === undefined){
const err92 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/snapshots/" + i3,schemaPath:"#/definitions/table/properties/snapshots/items/required",keyword:"required",params:{missingProperty: "id"},message:"must have required property '"+"id"+"'"};
if(vErrors === null){
vErrors = [err92];
}
else {
vErrors.push(err92);
}
errors++;
}
if(data34.at === undefined){
const err93 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/snapshots/" + i3,schemaPath:"#/definitions/table/properties/snapshots/items/required",keyword:"required",params:{missingProperty: "at"},message:"must have required property '"+"at"+"'"};
if(vErrors === null){
vErrors = [err93];
}
else {
vErrors.push(err93);
}
errors++;
}
if(data34.parts === undefined){
const err94 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/snapshots/" + i3,schemaPath:"#/definitions/table/properties/snapshots/items/required",keyword:"required",params:{missingProperty: "parts"},message:"must have required property '"+"parts"+"'"};
if(vErrors === null){
vErrors = [err94];
}
else {
vErrors.push(err94);
}
errors++;
}
for(const key6 in data34){
if(!(((key6 === "id") || (key6 === "at")) || (key6 === "parts"))){
const err95 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/snapshots/" + i3,schemaPath:"#/definitions/table/properties/snapshots/items/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key6},message:"must NOT have additional properties"};
if(vErrors === null){
vErrors = [err95];
}
else {
vErrors.push(err95);
}
errors++;
}
}
if(data34.id !== undefined){
let data35 = data34.id;
if(typeof data35 === "string"){
if(func0(data35) < 1){
const err96 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/snapshots/" + i3+"/id",schemaPath:"#/definitions/table/properties/snapshots/items/properties/id/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err96];
}
else {
vErrors.push(err96);
}
errors++;
}
}
else {
const err97 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/snapshots/" + i3+"/id",schemaPath:"#/definitions/table/properties/snapshots/items/properties/id/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err97];
}
else {
vErrors.push(err97);
}
errors++;
}
}
if(data34.at !== undefined){
let data36 = data34.at;
if(typeof data36 === "string"){
if(func0(data36) < 1){
const err98 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/snapshots/" + i3+"/at",schemaPath:"#/definitions/table/properties/snapshots/items/properties/at/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err98];
}
else {
vErrors.push(err98);
}
errors++;
}
}
else {
const err99 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/snapshots/" + i3+"/at",schemaPath:"#/definitions/table/properties/snapshots/items/properties/at/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err99];
}
else {
vErrors.push(err99);
}
errors++;
}
}
if(data34.parts !== undefined){
let data37 = data34.parts;
if(Array.isArray(data37)){
if(data37.length < 1){
const err100 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/snapshots/" + i3+"/parts",schemaPath:"#/definitions/table/properties/snapshots/items/properties/parts/minItems",keyword:"minItems",params:{limit: 1},message:"must NOT have fewer than 1 items"};
if(vErrors === null){
vErrors = [err100];
}
else {
vErrors.push(err100);
}
errors++;
}
const len4 = data37.length;
for(let i4=0; i4<len4; i4++){
let data38 = data37[i4];
if(!((typeof data38 == "number") && (!(data38 % 1) && !isNaN(data38)))){
const err101 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/snapshots/" + i3+"/parts/" + i4,schemaPath:"#/definitions/table/properties/snapshots/items/properties/parts/items/type",keyword:"type",params:{type: "integer"},message:"must be integer"};
if(vErrors === null){
vErrors = [err101];
}
else {
vErrors.push(err101);
}
errors++;
}
if(typeof data38 == "number"){
if(data38 < 0 || isNaN(data38)){
const err102 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/snapshots/" + i3+"/parts/" + i4,schemaPath:"#/definitions/table/properties/snapshots/items/properties/parts/items/minimum",keyword:"minimum",params:{comparison: ">=", limit: 0},message:"must be >= 0"};
if(vErrors === null){
vErrors = [err102];
}
else {
vErrors.push(err102);
}
errors++;
}
}
}
}
else {
const err103 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/snapshots/" + i3+"/parts",schemaPath:"#/definitions/table/properties/snapshots/items/properties/parts/type",keyword:"type",params:{type: "array"},message:"must be array"};
if(vErrors === null){
vErrors = [err103];
}
else {
vErrors.push(err103);
}
errors++;
}
}
}
else {
const err104 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/snapshots/" + i3,schemaPath:"#/definitions/table/properties/snapshots/items/type",keyword:"type",params:{type: "object"},message:"must be object"};
if(vErrors === null){
vErrors = [err104];
}
else {
vErrors.push(err104);
}
errors++;
}
}
}
else {
const err105 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/snapshots",schemaPath:"#/definitions/table/properties/snapshots/type",keyword:"type",params:{type: "array"},message:"must be array"};
if(vErrors === null){
vErrors = [err105];
}
else {
vErrors.push(err105);
}
errors++;
}
}
if(data2.columns !== undefined){
let data39 = data2.columns;
if(Array.isArray(data39)){
const len5 = data39.length;
for(let i5=0; i5<len5; i5++){
let data40 = data39[i5];
if(data40 && typeof data40 == "object" && !Array.isArray(data40)){
if(data40.name === undefined){
const err106 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/columns/" + i5,schemaPath:"#/definitions/table/properties/columns/items/required",keyword:"required",params:{missingProperty: "name"},message:"must have required property '"+"name"+"'"};
if(vErrors === null){
vErrors = [err106];
}
else {
vErrors.push(err106);
}
errors++;
}
if(data40.postgres_type === undefined){
const err107 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/columns/" + i5,schemaPath:"#/definitions/table/properties/columns/items/required",keyword:"required",params:{missingProperty: "postgres_type"},message:"must have required property '"+"postgres_type"+"'"};
if(vErrors === null){
vErrors = [err107];
}
else {
vErrors.push(err107);
}
errors++;
}
if(data40.parquet_type === undefined){
const err108 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/columns/" + i5,schemaPath:"#/definitions/table/properties/columns/items/required",keyword:"required",params:{missingProperty: "parquet_type"},message:"must have required property '"+"parquet_type"+"'"};
if(vErrors === null){
vErrors = [err108];
}
else {
vErrors.push(err108);
}
errors++;
}
if(data40.nullable === undefined){
const err109 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/columns/" + i5,schemaPath:"#/definitions/table/properties/columns/items/required",keyword:"required",params:{missingProperty: "nullable"},message:"must have required property '"+"nullable"+"'"};
if(vErrors === null){
vErrors = [err109];
}
else {
vErrors.push(err109);
}
errors++;
}
for(const key7 in data40){
if(!(((((key7 === "name") || (key7 === "postgres_type")) || (key7 === "parquet_type")) || (key7 === "nullable")) || (key7 === "text_form"))){
const err110 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/columns/" + i5,schemaPath:"#/definitions/table/properties/columns/items/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key7},message:"must NOT have additional properties"};
if(vErrors === null){
vErrors = [err110];
}
else {
vErrors.push(err110);
}
errors++;
}
}
if(data40.name !== undefined){
let data41 = data40.name;
if(typeof data41 === "string"){
if(func0(data41) > 63){
const err111 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/columns/" + i5+"/name",schemaPath:"#/definitions/table/properties/columns/items/properties/name/maxLength",keyword:"maxLength",params:{limit: 63},message:"must NOT have more than 63 characters"};
if(vErrors === null){
vErrors = [err111];
}
else {
vErrors.push(err111);
}
errors++;
}
if(func0(data41) < 1){
const err112 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/columns/" + i5+"/name",schemaPath:"#/definitions/table/properties/columns/items/properties/name/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err112];
}
else {
vErrors.push(err112);
}
errors++;
}
}
else {
const err113 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/columns/" + i5+"/name",schemaPath:"#/definitions/table/properties/columns/items/properties/name/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err113];
}
else {
vErrors.push(err113);
}
errors++;
}
}
if(data40.postgres_type !== undefined){
let data42 = data40.postgres_type;
if(typeof data42 === "string"){
if(func0(data42) < 1){
const err114 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/columns/" + i5+"/postgres_type",schemaPath:"#/definitions/table/properties/columns/items/properties/postgres_type/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err114];
}
else {
vErrors.push(err114);
}
errors++;
}
}
else {
const err115 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/columns/" + i5+"/postgres_type",schemaPath:"#/definitions/table/properties/columns/items/properties/postgres_type/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err115];
}
else {
vErrors.push(err115);
}
errors++;
}
}
if(data40.parquet_type !== undefined){
let data43 = data40.parquet_type;
if(typeof data43 === "string"){
if(func0(data43) < 1){
const err116 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/columns/" + i5+"/parquet_type",schemaPath:"#/definitions/table/properties/columns/items/properties/parquet_type/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err116];
}
else {
vErrors.push(err116);
}
errors++;
}
}
else {
const err117 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/columns/" + i5+"/parquet_type",schemaPath:"#/definitions/table/properties/columns/items/properties/parquet_type/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err117];
}
else {
vErrors.push(err117);
}
errors++;
}
}
if(data40.nullable !== undefined){
if(typeof data40.nullable !== "boolean"){
const err118 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/columns/" + i5+"/nullable",schemaPath:"#/definitions/table/properties/columns/items/properties/nullable/type",keyword:"type",params:{type: "boolean"},message:"must be boolean"};
if(vErrors === null){
vErrors = [err118];
}
else {
vErrors.push(err118);
}
errors++;
}
}
if(data40.text_form !== undefined){
if(typeof data40.text_form !== "boolean"){
const err119 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/columns/" + i5+"/text_form",schemaPath:"#/definitions/table/properties/columns/items/properties/text_form/type",keyword:"type",params:{type: "boolean"},message:"must be boolean"};
if(vErrors === null){
vErrors = [err119];
}
else {
vErrors.push(err119);
}
errors++;
}
}
}
else {
const err120 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/columns/" + i5,schemaPath:"#/definitions/table/properties/columns/items/type",keyword:"type",params:{type: "object"},message:"must be object"};
if(vErrors === null){
vErrors = [err120];
}
else {
vErrors.push(err120);
}
errors++;
}
}
}
else {
const err121 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/columns",schemaPath:"#/definitions/table/properties/columns/type",keyword:"type",params:{type: "array"},message:"must be array"};
if(vErrors === null){
vErrors = [err121];
}
else {
vErrors.push(err121);
}
errors++;
}
}
}
else {
const err122 = {instancePath:instancePath+"/tables/" + key1.replace(/~/g, "~0").replace(/\//g, "~1"),schemaPath:"#/definitions/table/type",keyword:"type",params:{type: "object"},message:"must be object"};
if(vErrors === null){
vErrors = [err122];
}
else {
vErrors.push(err122);
}
errors++;
}
}
}
else {
const err123 = {instancePath:instancePath+"/tables",schemaPath:"#/properties/tables/type",keyword:"type",params:{type: "object"},message:"must be object"};
if(vErrors === null){
vErrors = [err123];
}
else {
vErrors.push(err123);
}
errors++;
}
}
if(data.run_id !== undefined){
let data46 = data.run_id;
if(typeof data46 === "string"){
if(!pattern4.test(data46)){
const err124 = {instancePath:instancePath+"/run_id",schemaPath:"#/properties/run_id/pattern",keyword:"pattern",params:{pattern: "^\\d{8}T\\d{6}Z-[0-9a-f]{6}$"},message:"must match pattern \""+"^\\d{8}T\\d{6}Z-[0-9a-f]{6}$"+"\""};
if(vErrors === null){
vErrors = [err124];
}
else {
vErrors.push(err124);
}
errors++;
}
}
else {
const err125 = {instancePath:instancePath+"/run_id",schemaPath:"#/properties/run_id/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err125];
}
else {
vErrors.push(err125);
}
errors++;
}
}
if(data.format !== undefined){
if("parquet" !== data.format){
const err126 = {instancePath:instancePath+"/format",schemaPath:"#/properties/format/const",keyword:"const",params:{allowedValue: "parquet"},message:"must be equal to constant"};
if(vErrors === null){
vErrors = [err126];
}
else {
vErrors.push(err126);
}
errors++;
}
}
if(data.compression !== undefined){
let data48 = data.compression;
if(!(((((data48 === "gzip") || (data48 === "zstd")) || (data48 === "snappy")) || (data48 === "none")) || (data48 === "mixed"))){
const err127 = {instancePath:instancePath+"/compression",schemaPath:"#/properties/compression/enum",keyword:"enum",params:{allowedValues: schema0.properties.compression.enum},message:"must be equal to one of the allowed values"};
if(vErrors === null){
vErrors = [err127];
}
else {
vErrors.push(err127);
}
errors++;
}
}
if(data.layout !== undefined){
let data49 = data.layout;
if(!((data49 === "dreamdata") || (data49 === "portable"))){
const err128 = {instancePath:instancePath+"/layout",schemaPath:"#/properties/layout/enum",keyword:"enum",params:{allowedValues: schema0.properties.layout.enum},message:"must be equal to one of the allowed values"};
if(vErrors === null){
vErrors = [err128];
}
else {
vErrors.push(err128);
}
errors++;
}
}
if(data.selection !== undefined){
let data50 = data.selection;
if(data50 && typeof data50 == "object" && !Array.isArray(data50)){
if(data50.global_tables === undefined){
const err129 = {instancePath:instancePath+"/selection",schemaPath:"#/definitions/selection/required",keyword:"required",params:{missingProperty: "global_tables"},message:"must have required property '"+"global_tables"+"'"};
if(vErrors === null){
vErrors = [err129];
}
else {
vErrors.push(err129);
}
errors++;
}
if(data50.include_tables === undefined){
const err130 = {instancePath:instancePath+"/selection",schemaPath:"#/definitions/selection/required",keyword:"required",params:{missingProperty: "include_tables"},message:"must have required property '"+"include_tables"+"'"};
if(vErrors === null){
vErrors = [err130];
}
else {
vErrors.push(err130);
}
errors++;
}
if(data50.exclude_tables === undefined){
const err131 = {instancePath:instancePath+"/selection",schemaPath:"#/definitions/selection/required",keyword:"required",params:{missingProperty: "exclude_tables"},message:"must have required property '"+"exclude_tables"+"'"};
if(vErrors === null){
vErrors = [err131];
}
else {
vErrors.push(err131);
}
errors++;
}
if(data50.exclude_columns === undefined){
const err132 = {instancePath:instancePath+"/selection",schemaPath:"#/definitions/selection/required",keyword:"required",params:{missingProperty: "exclude_columns"},message:"must have required property '"+"exclude_columns"+"'"};
if(vErrors === null){
vErrors = [err132];
}
else {
vErrors.push(err132);
}
errors++;
}
if(data50.left_out === undefined){
const err133 = {instancePath:instancePath+"/selection",schemaPath:"#/definitions/selection/required",keyword:"required",params:{missingProperty: "left_out"},message:"must have required property '"+"left_out"+"'"};
if(vErrors === null){
vErrors = [err133];
}
else {
vErrors.push(err133);
}
errors++;
}
for(const key8 in data50){
if(!(((((((key8 === "tenant_column") || (key8 === "tenant_column_exported")) || (key8 === "global_tables")) || (key8 === "include_tables")) || (key8 === "exclude_tables")) || (key8 === "exclude_columns")) || (key8 === "left_out"))){
const err134 = {instancePath:instancePath+"/selection",schemaPath:"#/definitions/selection/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key8},message:"must NOT have additional properties"};
if(vErrors === null){
vErrors = [err134];
}
else {
vErrors.push(err134);
}
errors++;
}
}
if(data50.tenant_column !== undefined){
let data51 = data50.tenant_column;
if(typeof data51 === "string"){
if(func0(data51) < 1){
const err135 = {instancePath:instancePath+"/selection/tenant_column",schemaPath:"#/definitions/selection/properties/tenant_column/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err135];
}
else {
vErrors.push(err135);
}
errors++;
}
}
else {
const err136 = {instancePath:instancePath+"/selection/tenant_column",schemaPath:"#/definitions/selection/properties/tenant_column/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err136];
}
else {
vErrors.push(err136);
}
errors++;
}
}
if(data50.tenant_column_exported !== undefined){
if(typeof data50.tenant_column_exported !== "boolean"){
const err137 = {instancePath:instancePath+"/selection/tenant_column_exported",schemaPath:"#/definitions/selection/properties/tenant_column_exported/type",keyword:"type",params:{type: "boolean"},message:"must be boolean"};
if(vErrors === null){
vErrors = [err137];
}
else {
vErrors.push(err137);
}
errors++;
}
}
if(data50.global_tables !== undefined){
let data53 = data50.global_tables;
if(Array.isArray(data53)){
const len6 = data53.length;
for(let i6=0; i6<len6; i6++){
if(typeof data53[i6] !== "string"){
const err138 = {instancePath:instancePath+"/selection/global_tables/" + i6,schemaPath:"#/definitions/selection/properties/global_tables/items/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err138];
}
else {
vErrors.push(err138);
}
errors++;
}
}
}
else {
const err139 = {instancePath:instancePath+"/selection/global_tables",schemaPath:"#/definitions/selection/properties/global_tables/type",keyword:"type",params:{type: "array"},message:"must be array"};
if(vErrors === null){
vErrors = [err139];
}
else {
vErrors.push(err139);
}
errors++;
}
}
if(data50.include_tables !== undefined){
let data55 = data50.include_tables;
if(Array.isArray(data55)){
const len7 = data55.length;
for(let i7=0; i7<len7; i7++){
if(typeof data55[i7] !== "string"){
const err140 = {instancePath:instancePath+"/selection/include_tables/" + i7,schemaPath:"#/definitions/selection/properties/include_tables/items/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err140];
}
else {
vErrors.push(err140);
}
errors++;
}
}
}
else {
const err141 = {instancePath:instancePath+"/selection/include_tables",schemaPath:"#/definitions/selection/properties/include_tables/type",keyword:"type",params:{type: "array"},message:"must be array"};
if(vErrors === null){
vErrors = [err141];
}
else {
vErrors.push(err141);
}
errors++;
}
}
if(data50.exclude_tables !== undefined){
let data57 = data50.exclude_tables;
if(Array.isArray(data57)){
const len8 = data57.length;
for(let i8=0; i8<len8; i8++){
if(typeof data57[i8] !== "string"){
const err142 = {instancePath:instancePath+"/selection/exclude_tables/" + i8,schemaPath:"#/definitions/selection/properties/exclude_tables/items/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err142];
}
else {
vErrors.push(err142);
}
errors++;
}
}
}
else {
const err143 = {instancePath:instancePath+"/selection/exclude_tables",schemaPath:"#/definitions/selection/properties/exclude_tables/type",keyword:"type",params:{type: "array"},message:"must be array"};
if(vErrors === null){
vErrors = [err143];
}
else {
vErrors.push(err143);
}
errors++;
}
}
if(data50.exclude_columns !== undefined){
let data59 = data50.exclude_columns;
if(Array.isArray(data59)){
const len9 = data59.length;
for(let i9=0; i9<len9; i9++){
if(typeof data59[i9] !== "string"){
const err144 = {instancePath:instancePath+"/selection/exclude_columns/" + i9,schemaPath:"#/definitions/selection/properties/exclude_columns/items/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err144];
}
else {
vErrors.push(err144);
}
errors++;
}
}
}
else {
const err145 = {instancePath:instancePath+"/selection/exclude_columns",schemaPath:"#/definitions/selection/properties/exclude_columns/type",keyword:"type",params:{type: "array"},message:"must be array"};
if(vErrors === null){
vErrors = [err145];
}
else {
vErrors.push(err145);
}
errors++;
}
}
if(data50.left_out !== undefined){
let data61 = data50.left_out;
if(Array.isArray(data61)){
const len10 = data61.length;
for(let i10=0; i10<len10; i10++){
let data62 = data61[i10];
if(data62 && typeof data62 == "object" && !Array.isArray(data62)){
if(data62.table === undefined){
const err146 = {instancePath:instancePath+"/selection/left_out/" + i10,schemaPath:"#/definitions/selection/properties/left_out/items/required",keyword:"required",params:{missingProperty: "table"},message:"must have required property '"+"table"+"'"};
if(vErrors === null){
vErrors = [err146];
}
else {
vErrors.push(err146);
}
errors++;
}
if(data62.reason === undefined){
const err147 = {instancePath:instancePath+"/selection/left_out/" + i10,schemaPath:"#/definitions/selection/properties/left_out/items/required",keyword:"required",params:{missingProperty: "reason"},message:"must have required property '"+"reason"+"'"};
if(vErrors === null){
vErrors = [err147];
}
else {
vErrors.push(err147);
}
errors++;
}
for(const key9 in data62){
if(!((key9 === "table") || (key9 === "reason"))){
const err148 = {instancePath:instancePath+"/selection/left_out/" + i10,schemaPath:"#/definitions/selection/properties/left_out/items/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key9},message:"must NOT have additional properties"};
if(vErrors === null){
vErrors = [err148];
}
else {
vErrors.push(err148);
}
errors++;
}
}
if(data62.table !== undefined){
if(typeof data62.table !== "string"){
const err149 = {instancePath:instancePath+"/selection/left_out/" + i10+"/table",schemaPath:"#/definitions/selection/properties/left_out/items/properties/table/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err149];
}
else {
vErrors.push(err149);
}
errors++;
}
}
if(data62.reason !== undefined){
if(typeof data62.reason !== "string"){
const err150 = {instancePath:instancePath+"/selection/left_out/" + i10+"/reason",schemaPath:"#/definitions/selection/properties/left_out/items/properties/reason/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err150];
}
else {
vErrors.push(err150);
}
errors++;
}
}
}
else {
const err151 = {instancePath:instancePath+"/selection/left_out/" + i10,schemaPath:"#/definitions/selection/properties/left_out/items/type",keyword:"type",params:{type: "object"},message:"must be object"};
if(vErrors === null){
vErrors = [err151];
}
else {
vErrors.push(err151);
}
errors++;
}
}
}
else {
const err152 = {instancePath:instancePath+"/selection/left_out",schemaPath:"#/definitions/selection/properties/left_out/type",keyword:"type",params:{type: "array"},message:"must be array"};
if(vErrors === null){
vErrors = [err152];
}
else {
vErrors.push(err152);
}
errors++;
}
}
}
else {
const err153 = {instancePath:instancePath+"/selection",schemaPath:"#/definitions/selection/type",keyword:"type",params:{type: "object"},message:"must be object"};
if(vErrors === null){
vErrors = [err153];
}
else {
vErrors.push(err153);
}
errors++;
}
}
if(data.sequence !== undefined){
let data65 = data.sequence;
if(!((typeof data65 == "number") && (!(data65 % 1) && !isNaN(data65)))){
const err154 = {instancePath:instancePath+"/sequence",schemaPath:"#/properties/sequence/type",keyword:"type",params:{type: "integer"},message:"must be integer"};
if(vErrors === null){
vErrors = [err154];
}
else {
vErrors.push(err154);
}
errors++;
}
if(typeof data65 == "number"){
if(data65 < 1 || isNaN(data65)){
const err155 = {instancePath:instancePath+"/sequence",schemaPath:"#/properties/sequence/minimum",keyword:"minimum",params:{comparison: ">=", limit: 1},message:"must be >= 1"};
if(vErrors === null){
vErrors = [err155];
}
else {
vErrors.push(err155);
}
errors++;
}
}
}
if(data.previous_receipt_sha256 !== undefined){
let data66 = data.previous_receipt_sha256;
if((typeof data66 !== "string") && (data66 !== null)){
const err156 = {instancePath:instancePath+"/previous_receipt_sha256",schemaPath:"#/properties/previous_receipt_sha256/type",keyword:"type",params:{type: schema0.properties.previous_receipt_sha256.type},message:"must be string,null"};
if(vErrors === null){
vErrors = [err156];
}
else {
vErrors.push(err156);
}
errors++;
}
if(typeof data66 === "string"){
if(!pattern2.test(data66)){
const err157 = {instancePath:instancePath+"/previous_receipt_sha256",schemaPath:"#/properties/previous_receipt_sha256/pattern",keyword:"pattern",params:{pattern: "^[0-9a-f]{64}$"},message:"must match pattern \""+"^[0-9a-f]{64}$"+"\""};
if(vErrors === null){
vErrors = [err157];
}
else {
vErrors.push(err157);
}
errors++;
}
}
}
if(data.snapshot !== undefined){
let data67 = data.snapshot;
if(data67 && typeof data67 == "object" && !Array.isArray(data67)){
if(data67.id === undefined){
const err158 = {instancePath:instancePath+"/snapshot",schemaPath:"#/definitions/snapshot/required",keyword:"required",params:{missingProperty: "id"},message:"must have required property '"+"id"+"'"};
if(vErrors === null){
vErrors = [err158];
}
else {
vErrors.push(err158);
}
errors++;
}
if(data67.at === undefined){
const err159 = {instancePath:instancePath+"/snapshot",schemaPath:"#/definitions/snapshot/required",keyword:"required",params:{missingProperty: "at"},message:"must have required property '"+"at"+"'"};
if(vErrors === null){
vErrors = [err159];
}
else {
vErrors.push(err159);
}
errors++;
}
for(const key10 in data67){
if(!((key10 === "id") || (key10 === "at"))){
const err160 = {instancePath:instancePath+"/snapshot",schemaPath:"#/definitions/snapshot/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key10},message:"must NOT have additional properties"};
if(vErrors === null){
vErrors = [err160];
}
else {
vErrors.push(err160);
}
errors++;
}
}
if(data67.id !== undefined){
let data68 = data67.id;
if(typeof data68 === "string"){
if(!pattern6.test(data68)){
const err161 = {instancePath:instancePath+"/snapshot/id",schemaPath:"#/definitions/snapshot/properties/id/pattern",keyword:"pattern",params:{pattern: "^\\d+:\\d+:(\\d+(,\\d+)*)?$"},message:"must match pattern \""+"^\\d+:\\d+:(\\d+(,\\d+)*)?$"+"\""};
if(vErrors === null){
vErrors = [err161];
}
else {
vErrors.push(err161);
}
errors++;
}
}
else {
const err162 = {instancePath:instancePath+"/snapshot/id",schemaPath:"#/definitions/snapshot/properties/id/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err162];
}
else {
vErrors.push(err162);
}
errors++;
}
}
if(data67.at !== undefined){
let data69 = data67.at;
if(typeof data69 === "string"){
if(!pattern0.test(data69)){
const err163 = {instancePath:instancePath+"/snapshot/at",schemaPath:"#/definitions/snapshot/properties/at/pattern",keyword:"pattern",params:{pattern: "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}Z$"},message:"must match pattern \""+"^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}Z$"+"\""};
if(vErrors === null){
vErrors = [err163];
}
else {
vErrors.push(err163);
}
errors++;
}
}
else {
const err164 = {instancePath:instancePath+"/snapshot/at",schemaPath:"#/definitions/snapshot/properties/at/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err164];
}
else {
vErrors.push(err164);
}
errors++;
}
}
}
else {
const err165 = {instancePath:instancePath+"/snapshot",schemaPath:"#/definitions/snapshot/type",keyword:"type",params:{type: "object"},message:"must be object"};
if(vErrors === null){
vErrors = [err165];
}
else {
vErrors.push(err165);
}
errors++;
}
}
if(data.consistency !== undefined){
let data70 = data.consistency;
if(!((data70 === "delivery") || (data70 === "table"))){
const err166 = {instancePath:instancePath+"/consistency",schemaPath:"#/properties/consistency/enum",keyword:"enum",params:{allowedValues: schema0.properties.consistency.enum},message:"must be equal to one of the allowed values"};
if(vErrors === null){
vErrors = [err166];
}
else {
vErrors.push(err166);
}
errors++;
}
}
}
else {
const err167 = {instancePath,schemaPath:"#/type",keyword:"type",params:{type: "object"},message:"must be object"};
if(vErrors === null){
vErrors = [err167];
}
else {
vErrors.push(err167);
}
errors++;
}
validate0.errors = vErrors;
return errors === 0;
}

export const status = validate1;
const schema4 = {"$schema":"http://json-schema.org/draft-07/schema#","$id":"https://dropship.dev/schemas/status.schema.json","title":"dropship status.json","description":"Written to <prefix>/status.json at the end of every run, success or failure. receipt.json stays the trigger for loading; status.json tells where deliveries stand.","type":"object","required":["account","updated_at","last_run","last_success","last_failure","consecutive_failures","paused","paused_at","next_slot"],"properties":{"account":{"type":"string","minLength":1},"updated_at":{"type":"string","pattern":"^\\d{4}-\\d{2}-\\d{2}T[0-9:.]+Z$"},"last_run":{"description":"The latest run (null only before the first).","type":["object","null"],"required":["run_id","status","finished_at"],"properties":{"run_id":{"type":"string","minLength":1},"status":{"enum":["succeeded","failed"]},"finished_at":{"type":"string","pattern":"Z$"}},"additionalProperties":false},"last_success":{"description":"The latest successful run; receipt_key is the receipt.json it published.","oneOf":[{"type":"null"},{"type":"object","required":["run_id","receipt_key","finished_at"],"properties":{"run_id":{"type":"string","minLength":1},"receipt_key":{"type":"string","minLength":1},"finished_at":{"type":"string","pattern":"Z$"}},"additionalProperties":false}]},"last_failure":{"description":"The latest failed run: what happened and what the customer can do, in plain words.","oneOf":[{"type":"null"},{"type":"object","required":["run_id","at","reason","fix"],"properties":{"run_id":{"type":"string","minLength":1},"at":{"type":"string","pattern":"Z$"},"reason":{"type":"string","minLength":1},"fix":{"type":"string","minLength":1}},"additionalProperties":false}]},"consecutive_failures":{"type":"integer","minimum":0},"paused":{"description":"true when deliveries are paused (after repeated failures, or by dropship); nothing is delivered until it is resumed.","type":"boolean"},"paused_at":{"type":["string","null"]},"next_slot":{"description":"When the next scheduled delivery starts (UTC); null while paused.","type":["string","null"],"pattern":"^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z$"}},"additionalProperties":false};
const pattern8 = new RegExp("^\\d{4}-\\d{2}-\\d{2}T[0-9:.]+Z$", "u");
const pattern9 = new RegExp("Z$", "u");
const pattern12 = new RegExp("^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z$", "u");

function validate1(data, {instancePath="", parentData, parentDataProperty, rootData=data}={}){
/*# sourceURL="https://dropship.dev/schemas/status.schema.json" */;
let vErrors = null;
let errors = 0;
if(data && typeof data == "object" && !Array.isArray(data)){
if(data.account === undefined){
const err0 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "account"},message:"must have required property '"+"account"+"'"};
if(vErrors === null){
vErrors = [err0];
}
else {
vErrors.push(err0);
}
errors++;
}
if(data.updated_at === undefined){
const err1 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "updated_at"},message:"must have required property '"+"updated_at"+"'"};
if(vErrors === null){
vErrors = [err1];
}
else {
vErrors.push(err1);
}
errors++;
}
if(data.last_run === undefined){
const err2 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "last_run"},message:"must have required property '"+"last_run"+"'"};
if(vErrors === null){
vErrors = [err2];
}
else {
vErrors.push(err2);
}
errors++;
}
if(data.last_success === undefined){
const err3 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "last_success"},message:"must have required property '"+"last_success"+"'"};
if(vErrors === null){
vErrors = [err3];
}
else {
vErrors.push(err3);
}
errors++;
}
if(data.last_failure === undefined){
const err4 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "last_failure"},message:"must have required property '"+"last_failure"+"'"};
if(vErrors === null){
vErrors = [err4];
}
else {
vErrors.push(err4);
}
errors++;
}
if(data.consecutive_failures === undefined){
const err5 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "consecutive_failures"},message:"must have required property '"+"consecutive_failures"+"'"};
if(vErrors === null){
vErrors = [err5];
}
else {
vErrors.push(err5);
}
errors++;
}
if(data.paused === undefined){
const err6 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "paused"},message:"must have required property '"+"paused"+"'"};
if(vErrors === null){
vErrors = [err6];
}
else {
vErrors.push(err6);
}
errors++;
}
if(data.paused_at === undefined){
const err7 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "paused_at"},message:"must have required property '"+"paused_at"+"'"};
if(vErrors === null){
vErrors = [err7];
}
else {
vErrors.push(err7);
}
errors++;
}
if(data.next_slot === undefined){
const err8 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "next_slot"},message:"must have required property '"+"next_slot"+"'"};
if(vErrors === null){
vErrors = [err8];
}
else {
vErrors.push(err8);
}
errors++;
}
for(const key0 in data){
if(!(func5.call(schema4.properties, key0))){
const err9 = {instancePath,schemaPath:"#/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key0},message:"must NOT have additional properties"};
if(vErrors === null){
vErrors = [err9];
}
else {
vErrors.push(err9);
}
errors++;
}
}
if(data.account !== undefined){
let data0 = data.account;
if(typeof data0 === "string"){
if(func0(data0) < 1){
const err10 = {instancePath:instancePath+"/account",schemaPath:"#/properties/account/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err10];
}
else {
vErrors.push(err10);
}
errors++;
}
}
else {
const err11 = {instancePath:instancePath+"/account",schemaPath:"#/properties/account/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err11];
}
else {
vErrors.push(err11);
}
errors++;
}
}
if(data.updated_at !== undefined){
let data1 = data.updated_at;
if(typeof data1 === "string"){
if(!pattern8.test(data1)){
const err12 = {instancePath:instancePath+"/updated_at",schemaPath:"#/properties/updated_at/pattern",keyword:"pattern",params:{pattern: "^\\d{4}-\\d{2}-\\d{2}T[0-9:.]+Z$"},message:"must match pattern \""+"^\\d{4}-\\d{2}-\\d{2}T[0-9:.]+Z$"+"\""};
if(vErrors === null){
vErrors = [err12];
}
else {
vErrors.push(err12);
}
errors++;
}
}
else {
const err13 = {instancePath:instancePath+"/updated_at",schemaPath:"#/properties/updated_at/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err13];
}
else {
vErrors.push(err13);
}
errors++;
}
}
if(data.last_run !== undefined){
let data2 = data.last_run;
if((!(data2 && typeof data2 == "object" && !Array.isArray(data2))) && (data2 !== null)){
const err14 = {instancePath:instancePath+"/last_run",schemaPath:"#/properties/last_run/type",keyword:"type",params:{type: schema4.properties.last_run.type},message:"must be object,null"};
if(vErrors === null){
vErrors = [err14];
}
else {
vErrors.push(err14);
}
errors++;
}
if(data2 && typeof data2 == "object" && !Array.isArray(data2)){
if(data2.run_id === undefined){
const err15 = {instancePath:instancePath+"/last_run",schemaPath:"#/properties/last_run/required",keyword:"required",params:{missingProperty: "run_id"},message:"must have required property '"+"run_id"+"'"};
if(vErrors === null){
vErrors = [err15];
}
else {
vErrors.push(err15);
}
errors++;
}
if(data2.status === undefined){
const err16 = {instancePath:instancePath+"/last_run",schemaPath:"#/properties/last_run/required",keyword:"required",params:{missingProperty: "status"},message:"must have required property '"+"status"+"'"};
if(vErrors === null){
vErrors = [err16];
}
else {
vErrors.push(err16);
}
errors++;
}
if(data2.finished_at === undefined){
const err17 = {instancePath:instancePath+"/last_run",schemaPath:"#/properties/last_run/required",keyword:"required",params:{missingProperty: "finished_at"},message:"must have required property '"+"finished_at"+"'"};
if(vErrors === null){
vErrors = [err17];
}
else {
vErrors.push(err17);
}
errors++;
}
for(const key1 in data2){
if(!(((key1 === "run_id") || (key1 === "status")) || (key1 === "finished_at"))){
const err18 = {instancePath:instancePath+"/last_run",schemaPath:"#/properties/last_run/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key1},message:"must NOT have additional properties"};
if(vErrors === null){
vErrors = [err18];
}
else {
vErrors.push(err18);
}
errors++;
}
}
if(data2.run_id !== undefined){
let data3 = data2.run_id;
if(typeof data3 === "string"){
if(func0(data3) < 1){
const err19 = {instancePath:instancePath+"/last_run/run_id",schemaPath:"#/properties/last_run/properties/run_id/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err19];
}
else {
vErrors.push(err19);
}
errors++;
}
}
else {
const err20 = {instancePath:instancePath+"/last_run/run_id",schemaPath:"#/properties/last_run/properties/run_id/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err20];
}
else {
vErrors.push(err20);
}
errors++;
}
}
if(data2.status !== undefined){
let data4 = data2.status;
if(!((data4 === "succeeded") || (data4 === "failed"))){
const err21 = {instancePath:instancePath+"/last_run/status",schemaPath:"#/properties/last_run/properties/status/enum",keyword:"enum",params:{allowedValues: schema4.properties.last_run.properties.status.enum},message:"must be equal to one of the allowed values"};
if(vErrors === null){
vErrors = [err21];
}
else {
vErrors.push(err21);
}
errors++;
}
}
if(data2.finished_at !== undefined){
let data5 = data2.finished_at;
if(typeof data5 === "string"){
if(!pattern9.test(data5)){
const err22 = {instancePath:instancePath+"/last_run/finished_at",schemaPath:"#/properties/last_run/properties/finished_at/pattern",keyword:"pattern",params:{pattern: "Z$"},message:"must match pattern \""+"Z$"+"\""};
if(vErrors === null){
vErrors = [err22];
}
else {
vErrors.push(err22);
}
errors++;
}
}
else {
const err23 = {instancePath:instancePath+"/last_run/finished_at",schemaPath:"#/properties/last_run/properties/finished_at/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err23];
}
else {
vErrors.push(err23);
}
errors++;
}
}
}
}
if(data.last_success !== undefined){
let data6 = data.last_success;
const _errs15 = errors;
let valid2 = false;
let passing0 = null;
const _errs16 = errors;
if(data6 !== null){
const err24 = {instancePath:instancePath+"/last_success",schemaPath:"#/properties/last_success/oneOf/0/type",keyword:"type",params:{type: "null"},message:"must be null"};
if(vErrors === null){
vErrors = [err24];
}
else {
vErrors.push(err24);
}
errors++;
}
var _valid0 = _errs16 === errors;
if(_valid0){
valid2 = true;
passing0 = 0;
}
const _errs18 = errors;
if(data6 && typeof data6 == "object" && !Array.isArray(data6)){
if(data6.run_id === undefined){
const err25 = {instancePath:instancePath+"/last_success",schemaPath:"#/properties/last_success/oneOf/1/required",keyword:"required",params:{missingProperty: "run_id"},message:"must have required property '"+"run_id"+"'"};
if(vErrors === null){
vErrors = [err25];
}
else {
vErrors.push(err25);
}
errors++;
}
if(data6.receipt_key === undefined){
const err26 = {instancePath:instancePath+"/last_success",schemaPath:"#/properties/last_success/oneOf/1/required",keyword:"required",params:{missingProperty: "receipt_key"},message:"must have required property '"+"receipt_key"+"'"};
if(vErrors === null){
vErrors = [err26];
}
else {
vErrors.push(err26);
}
errors++;
}
if(data6.finished_at === undefined){
const err27 = {instancePath:instancePath+"/last_success",schemaPath:"#/properties/last_success/oneOf/1/required",keyword:"required",params:{missingProperty: "finished_at"},message:"must have required property '"+"finished_at"+"'"};
if(vErrors === null){
vErrors = [err27];
}
else {
vErrors.push(err27);
}
errors++;
}
for(const key2 in data6){
if(!(((key2 === "run_id") || (key2 === "receipt_key")) || (key2 === "finished_at"))){
const err28 = {instancePath:instancePath+"/last_success",schemaPath:"#/properties/last_success/oneOf/1/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key2},message:"must NOT have additional properties"};
if(vErrors === null){
vErrors = [err28];
}
else {
vErrors.push(err28);
}
errors++;
}
}
if(data6.run_id !== undefined){
let data7 = data6.run_id;
if(typeof data7 === "string"){
if(func0(data7) < 1){
const err29 = {instancePath:instancePath+"/last_success/run_id",schemaPath:"#/properties/last_success/oneOf/1/properties/run_id/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err29];
}
else {
vErrors.push(err29);
}
errors++;
}
}
else {
const err30 = {instancePath:instancePath+"/last_success/run_id",schemaPath:"#/properties/last_success/oneOf/1/properties/run_id/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err30];
}
else {
vErrors.push(err30);
}
errors++;
}
}
if(data6.receipt_key !== undefined){
let data8 = data6.receipt_key;
if(typeof data8 === "string"){
if(func0(data8) < 1){
const err31 = {instancePath:instancePath+"/last_success/receipt_key",schemaPath:"#/properties/last_success/oneOf/1/properties/receipt_key/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err31];
}
else {
vErrors.push(err31);
}
errors++;
}
}
else {
const err32 = {instancePath:instancePath+"/last_success/receipt_key",schemaPath:"#/properties/last_success/oneOf/1/properties/receipt_key/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err32];
}
else {
vErrors.push(err32);
}
errors++;
}
}
if(data6.finished_at !== undefined){
let data9 = data6.finished_at;
if(typeof data9 === "string"){
if(!pattern9.test(data9)){
const err33 = {instancePath:instancePath+"/last_success/finished_at",schemaPath:"#/properties/last_success/oneOf/1/properties/finished_at/pattern",keyword:"pattern",params:{pattern: "Z$"},message:"must match pattern \""+"Z$"+"\""};
if(vErrors === null){
vErrors = [err33];
}
else {
vErrors.push(err33);
}
errors++;
}
}
else {
const err34 = {instancePath:instancePath+"/last_success/finished_at",schemaPath:"#/properties/last_success/oneOf/1/properties/finished_at/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err34];
}
else {
vErrors.push(err34);
}
errors++;
}
}
}
else {
const err35 = {instancePath:instancePath+"/last_success",schemaPath:"#/properties/last_success/oneOf/1/type",keyword:"type",params:{type: "object"},message:"must be object"};
if(vErrors === null){
vErrors = [err35];
}
else {
vErrors.push(err35);
}
errors++;
}
var _valid0 = _errs18 === errors;
if(_valid0 && valid2){
valid2 = false;
passing0 = [passing0, 1];
}
else {
if(_valid0){
valid2 = true;
passing0 = 1;
}
}
if(!valid2){
const err36 = {instancePath:instancePath+"/last_success",schemaPath:"#/properties/last_success/oneOf",keyword:"oneOf",params:{passingSchemas: passing0},message:"must match exactly one schema in oneOf"};
if(vErrors === null){
vErrors = [err36];
}
else {
vErrors.push(err36);
}
errors++;
}
else {
errors = _errs15;
if(vErrors !== null){
if(_errs15){
vErrors.length = _errs15;
}
else {
vErrors = null;
}
}
}
}
if(data.last_failure !== undefined){
let data10 = data.last_failure;
const _errs28 = errors;
let valid4 = false;
let passing1 = null;
const _errs29 = errors;
if(data10 !== null){
const err37 = {instancePath:instancePath+"/last_failure",schemaPath:"#/properties/last_failure/oneOf/0/type",keyword:"type",params:{type: "null"},message:"must be null"};
if(vErrors === null){
vErrors = [err37];
}
else {
vErrors.push(err37);
}
errors++;
}
var _valid1 = _errs29 === errors;
if(_valid1){
valid4 = true;
passing1 = 0;
}
const _errs31 = errors;
if(data10 && typeof data10 == "object" && !Array.isArray(data10)){
if(data10.run_id === undefined){
const err38 = {instancePath:instancePath+"/last_failure",schemaPath:"#/properties/last_failure/oneOf/1/required",keyword:"required",params:{missingProperty: "run_id"},message:"must have required property '"+"run_id"+"'"};
if(vErrors === null){
vErrors = [err38];
}
else {
vErrors.push(err38);
}
errors++;
}
if(data10.at === undefined){
const err39 = {instancePath:instancePath+"/last_failure",schemaPath:"#/properties/last_failure/oneOf/1/required",keyword:"required",params:{missingProperty: "at"},message:"must have required property '"+"at"+"'"};
if(vErrors === null){
vErrors = [err39];
}
else {
vErrors.push(err39);
}
errors++;
}
if(data10.reason === undefined){
const err40 = {instancePath:instancePath+"/last_failure",schemaPath:"#/properties/last_failure/oneOf/1/required",keyword:"required",params:{missingProperty: "reason"},message:"must have required property '"+"reason"+"'"};
if(vErrors === null){
vErrors = [err40];
}
else {
vErrors.push(err40);
}
errors++;
}
if(data10.fix === undefined){
const err41 = {instancePath:instancePath+"/last_failure",schemaPath:"#/properties/last_failure/oneOf/1/required",keyword:"required",params:{missingProperty: "fix"},message:"must have required property '"+"fix"+"'"};
if(vErrors === null){
vErrors = [err41];
}
else {
vErrors.push(err41);
}
errors++;
}
for(const key3 in data10){
if(!((((key3 === "run_id") || (key3 === "at")) || (key3 === "reason")) || (key3 === "fix"))){
const err42 = {instancePath:instancePath+"/last_failure",schemaPath:"#/properties/last_failure/oneOf/1/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key3},message:"must NOT have additional properties"};
if(vErrors === null){
vErrors = [err42];
}
else {
vErrors.push(err42);
}
errors++;
}
}
if(data10.run_id !== undefined){
let data11 = data10.run_id;
if(typeof data11 === "string"){
if(func0(data11) < 1){
const err43 = {instancePath:instancePath+"/last_failure/run_id",schemaPath:"#/properties/last_failure/oneOf/1/properties/run_id/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err43];
}
else {
vErrors.push(err43);
}
errors++;
}
}
else {
const err44 = {instancePath:instancePath+"/last_failure/run_id",schemaPath:"#/properties/last_failure/oneOf/1/properties/run_id/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err44];
}
else {
vErrors.push(err44);
}
errors++;
}
}
if(data10.at !== undefined){
let data12 = data10.at;
if(typeof data12 === "string"){
if(!pattern9.test(data12)){
const err45 = {instancePath:instancePath+"/last_failure/at",schemaPath:"#/properties/last_failure/oneOf/1/properties/at/pattern",keyword:"pattern",params:{pattern: "Z$"},message:"must match pattern \""+"Z$"+"\""};
if(vErrors === null){
vErrors = [err45];
}
else {
vErrors.push(err45);
}
errors++;
}
}
else {
const err46 = {instancePath:instancePath+"/last_failure/at",schemaPath:"#/properties/last_failure/oneOf/1/properties/at/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err46];
}
else {
vErrors.push(err46);
}
errors++;
}
}
if(data10.reason !== undefined){
let data13 = data10.reason;
if(typeof data13 === "string"){
if(func0(data13) < 1){
const err47 = {instancePath:instancePath+"/last_failure/reason",schemaPath:"#/properties/last_failure/oneOf/1/properties/reason/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err47];
}
else {
vErrors.push(err47);
}
errors++;
}
}
else {
const err48 = {instancePath:instancePath+"/last_failure/reason",schemaPath:"#/properties/last_failure/oneOf/1/properties/reason/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err48];
}
else {
vErrors.push(err48);
}
errors++;
}
}
if(data10.fix !== undefined){
let data14 = data10.fix;
if(typeof data14 === "string"){
if(func0(data14) < 1){
const err49 = {instancePath:instancePath+"/last_failure/fix",schemaPath:"#/properties/last_failure/oneOf/1/properties/fix/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters"};
if(vErrors === null){
vErrors = [err49];
}
else {
vErrors.push(err49);
}
errors++;
}
}
else {
const err50 = {instancePath:instancePath+"/last_failure/fix",schemaPath:"#/properties/last_failure/oneOf/1/properties/fix/type",keyword:"type",params:{type: "string"},message:"must be string"};
if(vErrors === null){
vErrors = [err50];
}
else {
vErrors.push(err50);
}
errors++;
}
}
}
else {
const err51 = {instancePath:instancePath+"/last_failure",schemaPath:"#/properties/last_failure/oneOf/1/type",keyword:"type",params:{type: "object"},message:"must be object"};
if(vErrors === null){
vErrors = [err51];
}
else {
vErrors.push(err51);
}
errors++;
}
var _valid1 = _errs31 === errors;
if(_valid1 && valid4){
valid4 = false;
passing1 = [passing1, 1];
}
else {
if(_valid1){
valid4 = true;
passing1 = 1;
}
}
if(!valid4){
const err52 = {instancePath:instancePath+"/last_failure",schemaPath:"#/properties/last_failure/oneOf",keyword:"oneOf",params:{passingSchemas: passing1},message:"must match exactly one schema in oneOf"};
if(vErrors === null){
vErrors = [err52];
}
else {
vErrors.push(err52);
}
errors++;
}
else {
errors = _errs28;
if(vErrors !== null){
if(_errs28){
vErrors.length = _errs28;
}
else {
vErrors = null;
}
}
}
}
if(data.consecutive_failures !== undefined){
let data15 = data.consecutive_failures;
if(!((typeof data15 == "number") && (!(data15 % 1) && !isNaN(data15)))){
const err53 = {instancePath:instancePath+"/consecutive_failures",schemaPath:"#/properties/consecutive_failures/type",keyword:"type",params:{type: "integer"},message:"must be integer"};
if(vErrors === null){
vErrors = [err53];
}
else {
vErrors.push(err53);
}
errors++;
}
if(typeof data15 == "number"){
if(data15 < 0 || isNaN(data15)){
const err54 = {instancePath:instancePath+"/consecutive_failures",schemaPath:"#/properties/consecutive_failures/minimum",keyword:"minimum",params:{comparison: ">=", limit: 0},message:"must be >= 0"};
if(vErrors === null){
vErrors = [err54];
}
else {
vErrors.push(err54);
}
errors++;
}
}
}
if(data.paused !== undefined){
if(typeof data.paused !== "boolean"){
const err55 = {instancePath:instancePath+"/paused",schemaPath:"#/properties/paused/type",keyword:"type",params:{type: "boolean"},message:"must be boolean"};
if(vErrors === null){
vErrors = [err55];
}
else {
vErrors.push(err55);
}
errors++;
}
}
if(data.paused_at !== undefined){
let data17 = data.paused_at;
if((typeof data17 !== "string") && (data17 !== null)){
const err56 = {instancePath:instancePath+"/paused_at",schemaPath:"#/properties/paused_at/type",keyword:"type",params:{type: schema4.properties.paused_at.type},message:"must be string,null"};
if(vErrors === null){
vErrors = [err56];
}
else {
vErrors.push(err56);
}
errors++;
}
}
if(data.next_slot !== undefined){
let data18 = data.next_slot;
if((typeof data18 !== "string") && (data18 !== null)){
const err57 = {instancePath:instancePath+"/next_slot",schemaPath:"#/properties/next_slot/type",keyword:"type",params:{type: schema4.properties.next_slot.type},message:"must be string,null"};
if(vErrors === null){
vErrors = [err57];
}
else {
vErrors.push(err57);
}
errors++;
}
if(typeof data18 === "string"){
if(!pattern12.test(data18)){
const err58 = {instancePath:instancePath+"/next_slot",schemaPath:"#/properties/next_slot/pattern",keyword:"pattern",params:{pattern: "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z$"},message:"must match pattern \""+"^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z$"+"\""};
if(vErrors === null){
vErrors = [err58];
}
else {
vErrors.push(err58);
}
errors++;
}
}
}
}
else {
const err59 = {instancePath,schemaPath:"#/type",keyword:"type",params:{type: "object"},message:"must be object"};
if(vErrors === null){
vErrors = [err59];
}
else {
vErrors.push(err59);
}
errors++;
}
validate1.errors = vErrors;
return errors === 0;
}

