<?xml version="1.0" encoding="UTF-8"?>
<!--
  ImmunoSep's stylesheet for Define-XML 2.1 (XSLT 1.0): renders define.xml as HTML tables in a browser.
  It is not CDISC's define2-1.xsl (which this project cannot redistribute); it shows the same content:
  standards, datasets, variables with their origin, method and codelist, value-level metadata, codelists,
  methods and comments. Open define.xml in a browser that applies XSLT to local files (Firefox; Chromium
  only from a web server or with file access allowed), or run `xsltproc define2-1.xsl define.xml`.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:odm="http://www.cdisc.org/ns/odm/v1.3"
    xmlns:def="http://www.cdisc.org/ns/def/v2.1"
    xmlns:xlink="http://www.w3.org/1999/xlink"
    exclude-result-prefixes="odm def xlink">
  <xsl:output method="html" encoding="UTF-8" indent="yes" doctype-system="about:legacy-compat"/>

  <xsl:key name="item" match="odm:ItemDef" use="@OID"/>
  <xsl:key name="codelist" match="odm:CodeList" use="@OID"/>
  <xsl:key name="method" match="odm:MethodDef" use="@OID"/>
  <xsl:key name="comment" match="def:CommentDef" use="@OID"/>
  <xsl:key name="valuelist" match="def:ValueListDef" use="@OID"/>
  <xsl:key name="where" match="def:WhereClauseDef" use="@OID"/>
  <xsl:key name="leaf" match="def:leaf" use="@ID"/>

  <xsl:variable name="mdv" select="/odm:ODM/odm:Study/odm:MetaDataVersion"/>

  <xsl:template match="/">
    <html lang="en">
      <head>
        <meta charset="utf-8"/>
        <title>define.xml - <xsl:value-of select="/odm:ODM/odm:Study/odm:GlobalVariables/odm:StudyName"/></title>
        <style>
          body { font-family: sans-serif; font-size: 13px; margin: 1.5em; color: #222; }
          h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 2em; border-bottom: 1px solid #999; }
          h3 { font-size: 14px; margin-top: 1.5em; }
          table { border-collapse: collapse; margin: .5em 0 1em; }
          th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: left; vertical-align: top; }
          th { background: #e8eef4; } tr.vlm td { background: #f7f7f7; font-size: 12px; }
          .code { font-family: monospace; } nav a { margin-right: 1em; }
        </style>
      </head>
      <body>
        <h1><xsl:value-of select="/odm:ODM/odm:Study/odm:GlobalVariables/odm:StudyName"/>:
          <xsl:value-of select="/odm:ODM/odm:Study/odm:GlobalVariables/odm:StudyDescription"/></h1>
        <p><xsl:value-of select="$mdv/@Description"/>.
          Define-XML <xsl:value-of select="$mdv/@def:DefineVersion"/>, created
          <xsl:value-of select="/odm:ODM/@CreationDateTime"/> by <xsl:value-of select="/odm:ODM/@SourceSystem"/>
          <xsl:text> </xsl:text><xsl:value-of select="/odm:ODM/@SourceSystemVersion"/>.</p>
        <nav>
          <a href="#datasets">Datasets</a><a href="#codelists">Codelists</a><a href="#methods">Methods</a>
          <a href="#comments">Comments</a>
        </nav>
        <h2>Standards</h2>
        <table>
          <tr><th>Name</th><th>Type</th><th>Publishing set</th><th>Version</th><th>Status</th></tr>
          <xsl:for-each select="$mdv/def:Standards/def:Standard">
            <tr><td><xsl:value-of select="@Name"/></td><td><xsl:value-of select="@Type"/></td>
              <td><xsl:value-of select="@PublishingSet"/></td><td><xsl:value-of select="@Version"/></td>
              <td><xsl:value-of select="@Status"/></td></tr>
          </xsl:for-each>
        </table>
        <xsl:if test="$mdv/def:AnnotatedCRF or $mdv/def:SupplementalDoc">
          <h2>Documents</h2>
          <ul>
            <xsl:for-each select="$mdv/def:AnnotatedCRF/def:DocumentRef | $mdv/def:SupplementalDoc/def:DocumentRef">
              <xsl:variable name="leaf" select="key('leaf', @leafID)"/>
              <li><a href="{$leaf/@xlink:href}"><xsl:value-of select="$leaf/def:title"/></a></li>
            </xsl:for-each>
          </ul>
        </xsl:if>
        <h2 id="datasets">Datasets</h2>
        <table>
          <tr><th>Dataset</th><th>Description</th><th>Class</th><th>Structure</th><th>Purpose</th><th>Keys</th>
            <th>Location</th></tr>
          <xsl:for-each select="$mdv/odm:ItemGroupDef">
            <tr>
              <td><a href="#{@OID}"><xsl:value-of select="@Name"/></a></td>
              <td><xsl:value-of select="odm:Description/odm:TranslatedText"/></td>
              <td><xsl:value-of select="def:Class/@Name"/>
                <xsl:if test="def:Class/def:SubClass"> / <xsl:value-of select="def:Class/def:SubClass/@Name"/></xsl:if></td>
              <td><xsl:value-of select="@def:Structure"/></td>
              <td><xsl:value-of select="@Purpose"/></td>
              <td><xsl:for-each select="odm:ItemRef[@KeySequence]">
                  <xsl:sort select="@KeySequence" data-type="number"/>
                  <xsl:value-of select="key('item', @ItemOID)/@Name"/>
                  <xsl:if test="position() != last()">, </xsl:if>
                </xsl:for-each></td>
              <td><a href="{def:leaf/@xlink:href}"><xsl:value-of select="def:leaf/def:title"/></a></td>
            </tr>
          </xsl:for-each>
        </table>
        <xsl:apply-templates select="$mdv/odm:ItemGroupDef"/>
        <h2 id="codelists">Codelists</h2>
        <xsl:apply-templates select="$mdv/odm:CodeList"/>
        <h2 id="methods">Methods</h2>
        <table>
          <tr><th>Method</th><th>Type</th><th>Description</th></tr>
          <xsl:for-each select="$mdv/odm:MethodDef">
            <tr id="{@OID}"><td><xsl:value-of select="@Name"/></td><td><xsl:value-of select="@Type"/></td>
              <td><xsl:value-of select="odm:Description/odm:TranslatedText"/></td></tr>
          </xsl:for-each>
        </table>
        <h2 id="comments">Comments</h2>
        <table>
          <tr><th>Comment</th><th>Description</th></tr>
          <xsl:for-each select="$mdv/def:CommentDef">
            <tr id="{@OID}"><td class="code"><xsl:value-of select="@OID"/></td>
              <td><xsl:value-of select="odm:Description/odm:TranslatedText"/></td></tr>
          </xsl:for-each>
        </table>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="odm:ItemGroupDef">
    <h3 id="{@OID}"><xsl:value-of select="@Name"/> (<xsl:value-of select="odm:Description/odm:TranslatedText"/>)
      - <a href="{def:leaf/@xlink:href}"><xsl:value-of select="def:leaf/def:title"/></a></h3>
    <xsl:if test="@def:CommentOID">
      <p><xsl:value-of select="key('comment', @def:CommentOID)/odm:Description/odm:TranslatedText"/></p>
    </xsl:if>
    <table>
      <tr><th>Variable</th><th>Label</th><th>Type</th><th>Length</th><th>Format</th><th>Mandatory</th>
        <th>Codelist</th><th>Origin</th><th>Derivation / comment</th></tr>
      <xsl:for-each select="odm:ItemRef">
        <xsl:variable name="it" select="key('item', @ItemOID)"/>
        <tr>
          <td class="code"><xsl:value-of select="$it/@Name"/></td>
          <xsl:call-template name="item-cells"><xsl:with-param name="ref" select="."/></xsl:call-template>
        </tr>
        <xsl:for-each select="key('valuelist', $it/def:ValueListRef/@ValueListOID)/odm:ItemRef">
          <tr class="vlm">
            <td class="code">
              <xsl:for-each select="key('where', def:WhereClauseRef/@WhereClauseOID)/odm:RangeCheck">
                <xsl:value-of select="key('item', @def:ItemOID)/@Name"/><xsl:text> </xsl:text>
                <xsl:value-of select="@Comparator"/><xsl:text> </xsl:text>
                <xsl:for-each select="odm:CheckValue"><xsl:value-of select="."/>
                  <xsl:if test="position() != last()">, </xsl:if></xsl:for-each>
              </xsl:for-each>
            </td>
            <xsl:call-template name="item-cells"><xsl:with-param name="ref" select="."/></xsl:call-template>
          </tr>
        </xsl:for-each>
      </xsl:for-each>
    </table>
  </xsl:template>

  <xsl:template name="item-cells">
    <xsl:param name="ref"/>
    <xsl:variable name="it" select="key('item', $ref/@ItemOID)"/>
    <td><xsl:value-of select="$it/odm:Description/odm:TranslatedText"/></td>
    <td><xsl:value-of select="$it/@DataType"/></td>
    <td><xsl:value-of select="$it/@Length"/>
      <xsl:if test="$it/@SignificantDigits">.<xsl:value-of select="$it/@SignificantDigits"/></xsl:if></td>
    <td><xsl:value-of select="$it/@def:DisplayFormat"/></td>
    <td><xsl:value-of select="$ref/@Mandatory"/>
      <xsl:if test="$ref/@def:HasNoData = 'Yes'"> (no data)</xsl:if></td>
    <td><xsl:if test="$it/odm:CodeListRef">
        <a href="#{$it/odm:CodeListRef/@CodeListOID}">
          <xsl:value-of select="key('codelist', $it/odm:CodeListRef/@CodeListOID)/@Name"/></a></xsl:if></td>
    <td><xsl:value-of select="$it/def:Origin/@Type"/>
      <xsl:if test="$it/def:Origin/@Source"> (<xsl:value-of select="$it/def:Origin/@Source"/>)</xsl:if>
      <xsl:if test="$it/def:Origin/odm:Description">: <xsl:value-of
          select="$it/def:Origin/odm:Description/odm:TranslatedText"/></xsl:if></td>
    <td>
      <xsl:if test="$ref/@MethodOID">
        <a href="#{$ref/@MethodOID}"><xsl:value-of select="key('method', $ref/@MethodOID)/@Name"/></a>:
        <xsl:value-of select="key('method', $ref/@MethodOID)/odm:Description/odm:TranslatedText"/>
      </xsl:if>
      <xsl:if test="$it/@def:CommentOID">
        <xsl:if test="$ref/@MethodOID"><br/></xsl:if>
        <xsl:value-of select="key('comment', $it/@def:CommentOID)/odm:Description/odm:TranslatedText"/>
      </xsl:if>
    </td>
  </xsl:template>

  <xsl:template match="odm:CodeList">
    <h3 id="{@OID}"><xsl:value-of select="@Name"/>
      <xsl:if test="odm:Alias[@Context='nci:ExtCodeID']"> [<xsl:value-of
          select="odm:Alias[@Context='nci:ExtCodeID']/@Name"/>]</xsl:if></h3>
    <xsl:choose>
      <xsl:when test="odm:ExternalCodeList">
        <p>External dictionary: <xsl:value-of select="odm:ExternalCodeList/@Dictionary"/>, version
          <xsl:value-of select="odm:ExternalCodeList/@Version"/></p>
      </xsl:when>
      <xsl:otherwise>
        <table>
          <tr><th>Coded value</th><th>Decode</th><th>NCI code</th></tr>
          <xsl:for-each select="odm:CodeListItem | odm:EnumeratedItem">
            <tr><td class="code"><xsl:value-of select="@CodedValue"/>
                <xsl:if test="@def:ExtendedValue = 'Yes'"> *</xsl:if></td>
              <td><xsl:value-of select="odm:Decode/odm:TranslatedText"/></td>
              <td><xsl:value-of select="odm:Alias[@Context='nci:ExtCodeID']/@Name"/></td></tr>
          </xsl:for-each>
        </table>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
